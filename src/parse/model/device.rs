//! Device data recorded in the process rings (docs/FORMAT.md, device records): kernels,
//! communication ops and markers (`Kernel` / `Communication` / `Mstx` spans with `deviceId`,
//! `streamId`, `correlationId`), host API calls (`Api` spans with `correlationId`), usage samples
//! (`HostUsage` / `NpuUsage` metrics) and MSPTI drop counts (`Device`/`msptiDropped` events).
//!
//! While reading, [`fold`] draws them (device activity on one track per device) and keeps them
//! in a [`DevicePartial`]; [`DeviceModel::build`] then joins API calls to kernels by
//! correlationId (flows), and attributes each kernel / communication op to the host spans
//! enclosing its launch: device time per forward pass and per execute-side batch row.

use std::collections::HashMap;

use super::event::Event;
use super::partial::FlowPt;
use crate::parse::export::trace::{trace_tid, TraceOut};
use crate::record::Kind;

/// What a device activity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    /// A kernel (`Kernel` domain).
    Kernel,
    /// A collective communication op (`Communication` domain).
    Communication,
    /// A marker (`Mstx` domain).
    Marker,
}

/// Communication details.
#[derive(Clone, Debug, Default)]
pub struct CommInfo {
    /// `dataType`.
    pub data_type: String,
    /// `count` (elements).
    pub count: Option<i64>,
    /// `commName` (the communicator / group).
    pub comm_name: String,
    /// `algType`.
    pub alg_type: String,
}

/// One device activity.
#[derive(Clone, Debug)]
pub struct DevAct {
    /// Process index (the process whose ring held it).
    pub proc: usize,
    /// Kernel, communication or marker.
    pub kind: ActKind,
    /// Kernel / op / marker name.
    pub name: String,
    /// Start, epoch ns.
    pub start: i64,
    /// End, epoch ns.
    pub end: i64,
    /// `deviceId` (-1 when absent).
    pub device: i64,
    /// `streamId` (-1 when absent).
    pub stream: i64,
    /// `correlationId`.
    pub corr: Option<i64>,
    /// `type`.
    pub ty: String,
    /// Communication details (communication ops only).
    pub comm: Option<CommInfo>,
    /// Trace tid of its track.
    pub track: u32,
}

/// One host API call.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// Process index.
    pub proc: usize,
    /// API name.
    pub name: String,
    /// Start, epoch ns.
    pub start: i64,
    /// End, epoch ns.
    pub end: i64,
    /// Calling OS thread.
    pub tid: u32,
    /// `pid` attribute (else the process's pid is used).
    pub pid: Option<i64>,
    /// `correlationId`.
    pub corr: Option<i64>,
    /// Trace tid of its track.
    pub track: u32,
}

/// One usage sample.
#[derive(Clone, Debug)]
pub struct UsageSample {
    /// Process index.
    pub proc: usize,
    /// Epoch ns.
    pub ts: i64,
    /// `true` for `NpuUsage`, `false` for `HostUsage`.
    pub npu: bool,
    /// Metric name (`cpu_percent`, `mem_used_bytes`, `mem_percent`).
    pub name: String,
    /// `deviceId` (NPU samples).
    pub device: Option<i64>,
    /// Value.
    pub value: f64,
}

/// Device data of one process (or several, merged).
#[derive(Default)]
pub struct DevicePartial {
    /// Kernels, communication ops and markers.
    pub acts: Vec<DevAct>,
    /// API calls.
    pub apis: Vec<ApiCall>,
    /// Usage samples.
    pub usage: Vec<UsageSample>,
    /// Activity records MSPTI reported as dropped (`msptiDropped` events).
    pub dropped: u64,
}

impl DevicePartial {
    /// Whether any kernel or communication op was recorded (markers attribute no time).
    pub fn has_activity(&self) -> bool {
        self.acts.iter().any(|a| a.kind != ActKind::Marker)
    }

    /// Merge `o` into `self`.
    pub fn merge(&mut self, o: DevicePartial) {
        self.acts.extend(o.acts);
        self.apis.extend(o.apis);
        self.usage.extend(o.usage);
        self.dropped += o.dropped;
    }
}

/// The domains drawn on one track per device.
pub fn is_device_domain(domain: &str) -> bool {
    matches!(domain, "Kernel" | "Communication" | "Mstx")
}

/// The name of a device track: `<domain>(device <id>)`, or `<domain>(host)` for records without
/// a `deviceId` (host-side markers); `None` for other domains.
pub fn track_name(domain: &str, key: u32) -> Option<String> {
    is_device_domain(domain).then(|| match key as i32 {
        -1 => format!("{domain}(host)"),
        d => format!("{domain}(device {d})"),
    })
}

fn int(ev: &Event<'_>, key: &str) -> Option<i64> {
    ev.num(key).map(|v| v as i64)
}

/// The counter track of a usage sample, and its series name.
pub fn counter_of(npu: bool, name: &str, device: Option<i64>) -> (String, &'static str) {
    let what = match name {
        "cpu_percent" => ("CPU Usage", "Usage Percent"),
        "mem_used_bytes" => ("Memory Used", "Bytes"),
        "mem_percent" => ("Memory Usage", "Usage Percent"),
        _ => ("", "Value"),
    };
    let label = if what.0.is_empty() { name } else { what.0 };
    if npu {
        (format!("NPU {} {label}", device.unwrap_or(-1)), what.1)
    } else {
        (format!("Host {label}"), what.1)
    }
}

/// Fold one event if it is device data: keep it and draw it (kernels on their device's track,
/// usage samples as counters; a device-domain event is an activity of zero length). Returns whether it was device data (the host model skips it).
/// The event's `tid` is replaced by the device id for device-track domains.
pub fn fold(part: &mut DevicePartial, trace: Option<&mut TraceOut>, ev: &mut Event<'_>, proc: usize) -> std::io::Result<bool> {
    match (ev.kind, ev.domain) {
        (Kind::Span | Kind::Event, d) if is_device_domain(d) => {
            let device = int(ev, "deviceId").unwrap_or(-1);
            ev.tid = device as u32;
            let kind = match d {
                "Kernel" => ActKind::Kernel,
                "Communication" => ActKind::Communication,
                _ => ActKind::Marker,
            };
            let comm = (kind == ActKind::Communication).then(|| CommInfo {
                data_type: ev.str("dataType").unwrap_or("").to_string(),
                count: int(ev, "count"),
                comm_name: ev.str("commName").unwrap_or("").to_string(),
                alg_type: ev.str("algType").unwrap_or("").to_string(),
            });
            part.acts.push(DevAct {
                proc,
                kind,
                name: ev.name.to_string(),
                start: ev.start,
                end: ev.end,
                device,
                stream: int(ev, "streamId").unwrap_or(-1),
                corr: int(ev, "correlationId"),
                ty: ev.attrs.get("type").map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_default(),
                comm,
                track: trace_tid(d, ev.tid),
            });
            if let Some(t) = trace {
                t.slice(ev, None)?;
            }
            Ok(true)
        }
        (Kind::Span, "Api") => {
            part.apis.push(ApiCall {
                proc,
                name: ev.name.to_string(),
                start: ev.start,
                end: ev.end,
                tid: ev.tid,
                pid: int(ev, "pid"),
                corr: int(ev, "correlationId"),
                track: trace_tid("Api", ev.tid),
            });
            if let Some(t) = trace {
                t.slice(ev, None)?;
            }
            Ok(true)
        }
        (Kind::Metric, d @ ("HostUsage" | "NpuUsage")) => {
            let Some(v) = ev.value else { return Ok(true) };
            let npu = d == "NpuUsage";
            let device = if npu { int(ev, "deviceId") } else { None };
            if let Some(t) = trace {
                let (name, series) = counter_of(npu, ev.name, device);
                t.counter(&name, d, ev.start, &[(series, v)])?;
            }
            part.usage.push(UsageSample { proc, ts: ev.start, npu, name: ev.name.to_string(), device, value: v });
            Ok(true)
        }
        (Kind::Event, "Device") if ev.name == "msptiDropped" => {
            part.dropped += ev.num("count").map(|c| c.max(0.0) as u64).unwrap_or(0);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Device time attributed to one host span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevTime {
    /// Kernels.
    pub kernels: u64,
    /// Σ kernel durations, ns.
    pub kernel_ns: i64,
    /// Σ communication-op durations, ns.
    pub comm_ns: i64,
    /// Length of the union of the kernel and communication intervals (device busy time), ns.
    pub busy_ns: i64,
}

/// Totals for the closing summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceTotals {
    /// Kernels.
    pub kernels: u64,
    /// Communication ops.
    pub comms: u64,
    /// Markers.
    pub markers: u64,
    /// API calls.
    pub apis: u64,
    /// Kernels / ops joined to their API call.
    pub correlated: u64,
    /// Usage samples.
    pub usage: u64,
    /// Records MSPTI dropped.
    pub dropped: u64,
}

/// Device data after the joins (immutable from then on).
#[derive(Default)]
pub struct DeviceModel {
    /// Activities sorted by (process, start).
    pub acts: Vec<DevAct>,
    /// API calls sorted by (process, start).
    pub apis: Vec<ApiCall>,
    /// Usage samples sorted by (time, process).
    pub usage: Vec<UsageSample>,
    /// For each activity, the index of its API call in `apis` (same process, same correlationId).
    pub api_of: Vec<Option<usize>>,
    /// API → kernel flows: id `api-kernel:<trace pid>:<correlationId>`, points API start, kernel start.
    pub flows: Vec<(String, Vec<FlowPt>)>,
    /// Device time per forward row (same order as the model's forwards; empty without device
    /// activity: read it with [`DeviceModel::forward_time`]).
    pub forward: Vec<Option<DevTime>>,
    /// Device time per batch row (execute-side rows only; empty without device activity: read it
    /// with [`DeviceModel::batch_time`]).
    pub batch: Vec<Option<DevTime>>,
    /// Summary totals.
    pub totals: DeviceTotals,
}

impl DeviceModel {
    /// Join and attribute. `spans` are the host spans to attribute to, as (process, start, end)
    /// per forward row and per batch row (`None` for rows that get no device time); `trace_pid`
    /// maps a process index to its trace pid.
    pub fn build(p: DevicePartial, forwards: &[(usize, i64, i64)], batches: &[Option<(usize, i64, i64)>], trace_pid: impl Fn(usize) -> u64) -> DeviceModel {
        let mut acts = p.acts;
        acts.sort_by_key(|a| (a.proc, a.start, a.end, a.device, a.stream));
        let mut apis = p.apis;
        apis.sort_by_key(|a| (a.proc, a.start, a.tid));
        let mut usage = p.usage;
        usage.sort_by_key(|a| (a.ts, a.proc));
        let mut by_corr: HashMap<(usize, i64), usize> = HashMap::new();
        for (i, a) in apis.iter().enumerate() {
            if let Some(c) = a.corr {
                by_corr.entry((a.proc, c)).or_insert(i);
            }
        }
        let api_of: Vec<Option<usize>> = acts.iter().map(|k| k.corr.and_then(|c| by_corr.get(&(k.proc, c)).copied())).collect();
        // Flows: one per API call that launched something (its first activity).
        let mut flows = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (k, a) in acts.iter().zip(&api_of) {
            let Some(i) = *a else { continue };
            if !seen.insert(i) {
                continue;
            }
            let api = &apis[i];
            let pid = trace_pid(k.proc);
            flows.push((
                format!("api-kernel:{pid}:{}", k.corr.unwrap_or_default()),
                vec![FlowPt { ts: api.start, pid, tid: api.track }, FlowPt { ts: k.start, pid, tid: k.track }],
            ));
        }
        flows.sort_by(|a, b| (a.1[0].ts, &a.0).cmp(&(b.1[0].ts, &b.0)));
        // Attribution anchor: the launching API call's start, else the activity's own start.
        let mut anchored: Vec<(usize, i64, usize)> = acts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.kind != ActKind::Marker)
            .map(|(i, a)| (a.proc, api_of[i].map(|j| apis[j].start).unwrap_or(a.start), i))
            .collect();
        anchored.sort();
        let any = !anchored.is_empty();
        let time_of = |proc: usize, s: i64, e: i64| -> DevTime {
            let lo = anchored.partition_point(|x| (x.0, x.1) < (proc, s));
            let hi = anchored.partition_point(|x| (x.0, x.1) <= (proc, e));
            let mut t = DevTime::default();
            let mut iv: Vec<(i64, i64)> = Vec::with_capacity(hi - lo);
            for &(_, _, i) in &anchored[lo..hi] {
                let a = &acts[i];
                match a.kind {
                    ActKind::Kernel => {
                        t.kernels += 1;
                        t.kernel_ns += a.end - a.start;
                    }
                    _ => t.comm_ns += a.end - a.start,
                }
                iv.push((a.start, a.end));
            }
            t.busy_ns = union_len(&mut iv);
            t
        };
        // Without device activity every entry would be `None`: keep the vectors empty.
        let (forward, batch) = if any {
            (forwards.iter().map(|&(p, s, e)| Some(time_of(p, s, e))).collect(), batches.iter().map(|r| r.map(|(p, s, e)| time_of(p, s, e))).collect())
        } else {
            (Vec::new(), Vec::new())
        };
        let totals = DeviceTotals {
            kernels: acts.iter().filter(|a| a.kind == ActKind::Kernel).count() as u64,
            comms: acts.iter().filter(|a| a.kind == ActKind::Communication).count() as u64,
            markers: acts.iter().filter(|a| a.kind == ActKind::Marker).count() as u64,
            apis: apis.len() as u64,
            correlated: api_of.iter().filter(|a| a.is_some()).count() as u64,
            usage: usage.len() as u64,
            dropped: p.dropped,
        };
        DeviceModel { acts, apis, usage, api_of, flows, forward, batch, totals }
    }

    /// Device time of forward row `i`.
    pub fn forward_time(&self, i: usize) -> Option<DevTime> {
        self.forward.get(i).copied().flatten()
    }

    /// Device time of batch row `i`.
    pub fn batch_time(&self, i: usize) -> Option<DevTime> {
        self.batch.get(i).copied().flatten()
    }

    /// Whether there is device activity to report per forward / batch.
    pub fn has_activity(&self) -> bool {
        self.acts.iter().any(|a| a.kind != ActKind::Marker)
    }

    /// The closing-summary line, when there is any device data.
    pub fn summary_line(&self) -> Option<String> {
        let t = &self.totals;
        if t.kernels + t.comms + t.markers + t.apis + t.usage + t.dropped == 0 {
            return None;
        }
        Some(format!(
            "device: {} kernel(s), {} communication op(s), {} marker(s), {} API call(s) ({} activities joined to their API call), {} usage sample(s); {} activity record(s) dropped by MSPTI",
            t.kernels, t.comms, t.markers, t.apis, t.correlated, t.usage, t.dropped
        ))
    }
}

/// Length of the union of intervals (sorts `iv`).
pub fn union_len(iv: &mut [(i64, i64)]) -> i64 {
    iv.sort_unstable();
    let (mut total, mut cur) = (0i64, None::<(i64, i64)>);
    for &(s, e) in iv.iter() {
        match cur {
            Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                cur = Some((s, e));
            }
            None => cur = Some((s, e)),
        }
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_of_overlapping_intervals() {
        assert_eq!(union_len(&mut [(0, 10), (5, 15), (20, 25)]), 20);
        assert_eq!(union_len(&mut [(3, 4)]), 1);
        assert_eq!(union_len(&mut []), 0);
        assert_eq!(union_len(&mut [(0, 10), (2, 3), (10, 12)]), 12);
    }

    #[test]
    fn counter_names() {
        assert_eq!(counter_of(false, "cpu_percent", None), ("Host CPU Usage".to_string(), "Usage Percent"));
        assert_eq!(counter_of(true, "mem_used_bytes", Some(3)), ("NPU 3 Memory Used".to_string(), "Bytes"));
    }

    #[test]
    fn track_names() {
        assert_eq!(track_name("Kernel", 2).as_deref(), Some("Kernel(device 2)"));
        assert_eq!(track_name("Mstx", u32::MAX).as_deref(), Some("Mstx(host)"));
        assert_eq!(track_name("Execute", 2), None);
    }
}
