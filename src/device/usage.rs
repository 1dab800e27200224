//! `host_system_usage_freq` / `npu_memory_usage_freq`: a sampler thread in the master process
//! (the first process of the service, see [`crate::files::rundir`]) writing `HostUsage` and
//! `NpuUsage` gauges at the configured rates (1–50 Hz). Host CPU and memory come from procfs,
//! natively; NPU memory from DCMI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::dcmi::Dcmi;
use super::records;
use crate::clock::monotonic_ns;
use crate::core::Core;
use crate::record::{Attr, Kind, Value};

/// Busy and total jiffies of all CPUs (first line of /proc/stat).
pub fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// (total, available) bytes from /proc/meminfo.
pub fn mem_bytes(meminfo: &str) -> Option<(u64, u64)> {
    let kb = |key: &str| meminfo.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok());
    Some((kb("MemTotal:")? * 1024, kb("MemAvailable:")? * 1024))
}

/// Rates and what to sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    /// Host CPU/memory, Hz.
    pub host: Option<u32>,
    /// NPU memory, Hz.
    pub npu: Option<u32>,
}

/// The running sampler thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

struct Ids {
    host: u32,
    npu: u32,
    cpu: u32,
    used: u32,
    pct: u32,
    device_id: u32,
}

fn period(hz: Option<u32>) -> Option<u64> {
    hz.map(|h| 1_000_000_000 / h.clamp(1, 50) as u64)
}

impl Sampler {
    /// Start sampling (the thread writes until [`stop`](Self::stop)).
    pub fn start(core: &'static Core, rates: Rates) -> Option<Sampler> {
        let dcmi = if rates.npu.is_some() { Dcmi::open() } else { None };
        let rates = Rates { npu: rates.npu.filter(|_| dcmi.is_some()), ..rates };
        if rates.host.is_none() && rates.npu.is_none() {
            return None;
        }
        let i = |s: &str| core.intern(s.as_bytes());
        let ids =
            Ids { host: i("HostUsage"), npu: i("NpuUsage"), cpu: i("cpu_percent"), used: i("mem_used_bytes"), pct: i("mem_percent"), device_id: i("deviceId") };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("msp-usage".into()).spawn(move || run(core, rates, dcmi, ids, &flag)).ok()?;
        Some(Sampler { stop, thread })
    }

    /// Stop and join the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

fn gauge(core: &Core, domain: u32, name: u32, ts: u64, v: f64, attrs: &[Attr<'_>]) {
    records::put(core, Kind::Metric, domain, name, (ts, v.to_bits()), attrs, crate::process::tid());
}

fn run(core: &Core, rates: Rates, mut dcmi: Option<Dcmi>, ids: Ids, stop: &AtomicBool) {
    let (hp, np) = (period(rates.host), period(rates.npu));
    let start = monotonic_ns();
    let (mut next_host, mut next_npu) = (hp.map(|p| start + p), np.map(|_| start));
    let mut last = std::fs::read_to_string("/proc/stat").ok().as_deref().and_then(cpu_times);
    while !stop.load(Ordering::Acquire) {
        let now = monotonic_ns();
        if let (Some(p), Some(due)) = (hp, next_host) {
            if now >= due {
                next_host = Some(due.max(now - p) + p);
                let cur = std::fs::read_to_string("/proc/stat").ok().as_deref().and_then(cpu_times);
                if let (Some((b0, t0)), Some((b1, t1))) = (last, cur) {
                    if t1 > t0 {
                        gauge(core, ids.host, ids.cpu, now, (b1 - b0) as f64 * 100.0 / (t1 - t0) as f64, &[]);
                    }
                }
                last = cur.or(last);
                if let Some((total, avail)) = std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(mem_bytes) {
                    let used = total.saturating_sub(avail);
                    gauge(core, ids.host, ids.used, now, used as f64, &[]);
                    gauge(core, ids.host, ids.pct, now, used as f64 * 100.0 / total.max(1) as f64, &[]);
                }
            }
        }
        if let (Some(p), Some(due), Some(d)) = (np, next_npu, dcmi.as_mut()) {
            if now >= due {
                next_npu = Some(due.max(now - p) + p);
                for s in d.sample() {
                    let a = [Attr { key: ids.device_id, value: Value::Int(s.index as i64) }];
                    gauge(core, ids.npu, ids.used, now, s.used_bytes as f64, &a);
                    gauge(core, ids.npu, ids.pct, now, s.percent, &a);
                }
            }
        }
        let next = [next_host, next_npu].into_iter().flatten().min().unwrap_or(now + 100_000_000);
        std::thread::park_timeout(Duration::from_nanos(next.saturating_sub(monotonic_ns()).max(1_000_000)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfs_parsing() {
        let stat = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(cpu_times(stat), Some((160, 980)));
        let mem = "MemTotal:       16000 kB\nMemFree:         1000 kB\nMemAvailable:    4000 kB\n";
        assert_eq!(mem_bytes(mem), Some((16000 * 1024, 4000 * 1024)));
        assert_eq!(cpu_times("intr 1 2"), None);
    }
}
