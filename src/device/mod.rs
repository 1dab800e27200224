//! The native device path (docs/DEVICE.md): CANN libraries loaded at run time, device activity
//! written into the process's ring as ordinary records, and host/NPU usage sampling.
//!
//! The core says what it wants ([`Device::want`], cheap, under the control lock) whenever capture
//! turns on or off; the control thread applies it ([`Device::tick`], outside the control lock):
//! it starts and stops the MSPTI subscription (`acl_task_time: 2`), ACL prof (`1`, plus mstx
//! mirroring of host spans) and the usage sampler, flushes MSPTI every 100 ms, and drains the
//! activities MSPTI handed over into the ring. Without CANN every part stays off after one log
//! line and host capture is unaffected.

pub mod aclprof;
pub mod cann;
pub mod dcmi;
pub mod mspti;
pub mod mstx;
pub mod profapi;
pub mod records;
#[allow(non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code, missing_docs, clippy::all)]
pub mod sys;
pub mod usage;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::clock::monotonic_ns;
use crate::control::config::Config;
use crate::core::{Core, MSTX, STATE};
use crate::files::meta::Counter;
use crate::log::{self, Level};

/// MSPTI is flushed this often.
const FLUSH_EVERY_NS: u64 = 100_000_000;

/// What the device path should be doing while capture is on.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `acl_task_time` after the conflict rules (0 when refused).
    pub mode: u32,
    /// The run directory (ACL prof writes `PROF_*` here).
    pub run_dir: PathBuf,
    /// MSPTI name filters.
    pub filters: mspti::Filters,
    /// ACL prof data types and AI Core metrics.
    pub acl: aclprof::Settings,
    /// ACL prof stops after this many seconds (`acl_prof_task_time_level` `"Lx;N"`).
    pub acl_duration_s: Option<u32>,
    /// Usage sampling rates (master process only; otherwise none).
    pub rates: usage::Rates,
}

/// Early work on the control thread's start, when the config file already asks for ACL prof
/// (`acl_prof`): register the device-state callback (CANN_ABI §5) so that the device id is known
/// even if the service opens its NPU before capture is enabled (the reference registers it when
/// its manager thread starts). Processes that do not ask for ACL prof load nothing of CANN here.
pub fn on_control_start(acl_prof: bool) {
    if acl_prof {
        profapi::register();
    }
}

/// In a forked child (from the fork handler): forget the parent's device state. Its MSPTI
/// threads do not exist here, so a hand-off lock they held at the fork is released, and records
/// the parent had queued are discarded (they belong to the parent's file set).
pub fn after_fork_child() {
    mspti::after_fork_child();
}

/// Whether msprof is collecting this process (CONTRACT §1.7).
fn msprof_active() -> bool {
    std::env::var_os("PROFILER_SAMPLECONFIG").is_some_and(|v| !v.is_empty()) || std::env::var("PROFILING_MODE").is_ok_and(|v| v == "dynamic")
}

impl Plan {
    /// The plan for `cfg`, applying the conflict rules (each reported once); `None` when the
    /// device path has nothing to do.
    pub fn new(cfg: &Config, run_dir: PathBuf, master: bool) -> Option<Plan> {
        let mut mode = cfg.acl_task_time;
        if (mode == 1 || mode == 2) && msprof_active() {
            log::once(
                Level::Error,
                "dev-msprof",
                &format!("msprof is collecting (PROFILER_SAMPLECONFIG or PROFILING_MODE=dynamic): acl_task_time={mode} is refused, host capture continues"),
            );
            mode = 0;
        }
        if mode == 1 && cann::preloaded("libmspti.so").is_some() {
            log::once(Level::Warning, "dev-acl-mspti", "LD_PRELOAD contains libmspti.so: acl_task_time=1 (ACL prof) conflicts with MSPTI and is off");
            mode = 0;
        }
        let rates =
            if master { usage::Rates { host: cfg.host_system_usage_freq, npu: cfg.npu_memory_usage_freq } } else { usage::Rates { host: None, npu: None } };
        if mode != 1 && mode != 2 && rates.host.is_none() && rates.npu.is_none() {
            return None;
        }
        Some(Plan {
            mode,
            run_dir,
            filters: mspti::Filters { api: cfg.api_filter.clone(), kernel: cfg.kernel_filter.clone() },
            acl: aclprof::Settings { mask: cfg.acl_data_type_mask, aicore_metrics: cfg.aicore_metrics },
            acl_duration_s: cfg.acl_duration_s,
            rates,
        })
    }
}

#[derive(Default)]
struct Work {
    gen: u64,
    plan: Option<Plan>,
    mspti: Option<mspti::Session>,
    acl: Option<aclprof::Session>,
    acl_started: u64,
    acl_done: bool,
    sampler: Option<usage::Sampler>,
    emitter: Option<records::Emitter>,
    last_flush: u64,
    dropped: u64,
}

/// The device path of one process.
#[derive(Default)]
pub struct Device {
    want: Mutex<(u64, Option<Plan>)>,
    work: Mutex<Work>,
}

impl Device {
    /// Record what capture now wants (applied by the next [`tick`](Self::tick)).
    pub fn want(&self, plan: Option<Plan>) {
        let mut w = self.want.lock();
        w.0 += 1;
        w.1 = plan;
    }

    /// Apply the wanted state, flush MSPTI, write what it delivered. `wait`: block for the worker
    /// lock (shutdown) instead of skipping a busy tick.
    pub fn tick(&self, core: &'static Core, wait: bool) {
        let mut w = match self.work.try_lock() {
            Some(w) => w,
            // Shutdown: wait for a running tick, but never hang the exiting process on CANN.
            None if wait => {
                let Some(w) = self.work.try_lock_for(std::time::Duration::from_secs(2)) else {
                    log::log(Level::Warning, "device capture still busy at exit; its last records are not written");
                    return;
                };
                w
            }
            None => return,
        };
        let (gen, plan) = {
            let want = self.want.lock();
            (want.0, if want.0 != w.gen { want.1.clone() } else { None })
        };
        if gen != w.gen {
            self.stop_all(&mut w, core);
            w.gen = gen;
            if let Some(p) = plan {
                Self::start_all(&mut w, core, p);
            }
        }
        Self::upkeep(&mut w, core);
    }

    fn start_all(w: &mut Work, core: &'static Core, p: Plan) {
        match p.mode {
            2 => w.mspti = mspti::Session::start(p.filters.clone()),
            1 if aclprof::available() && !profapi::register() => {
                log::once(
                    Level::Warning,
                    "dev-no-device",
                    "no device id (libprofapi.so missing, or without a device-state callback): ACL prof collection is skipped",
                );
            }
            _ => {}
        }
        if p.rates.host.is_some() || p.rates.npu.is_some() {
            w.sampler = usage::Sampler::start(core, p.rates);
        }
        w.acl_done = false;
        w.last_flush = monotonic_ns();
        w.plan = Some(p);
    }

    fn stop_all(&self, w: &mut Work, core: &Core) {
        if let Some(s) = w.mspti.take() {
            let n = s.stop();
            Self::note_dropped(w, n);
        }
        Self::stop_acl(w);
        if let Some(s) = w.sampler.take() {
            s.stop();
        }
        w.plan = None;
        Self::drain(w, core);
    }

    fn stop_acl(w: &mut Work) {
        STATE.fetch_and(!MSTX, Ordering::AcqRel);
        if let Some(s) = w.acl.take() {
            s.stop();
        }
    }

    fn upkeep(w: &mut Work, core: &Core) {
        let now = monotonic_ns();
        if let Some(p) = w.plan.as_ref().filter(|p| p.mode == 1 && aclprof::available()) {
            let expired = p.acl_duration_s.is_some_and(|s| w.acl.is_some() && now.saturating_sub(w.acl_started) >= s as u64 * 1_000_000_000);
            let device = profapi::device();
            if expired {
                log::log(Level::Info, &format!("acl_prof_task_time_level duration of {} s reached", p.acl_duration_s.unwrap_or(0)));
                Self::stop_acl(w);
                w.acl_done = true;
            } else if w.acl.as_ref().is_some_and(|s| Some(s.device) != device) {
                Self::stop_acl(w); // the process moved to another device: restart there
            }
            let p = w.plan.as_ref().unwrap();
            if let (None, false, Some(dev)) = (&w.acl, w.acl_done, device) {
                if let Err(e) = std::fs::create_dir_all(&p.run_dir) {
                    log::once(Level::Warning, "dev-acl-dir", &format!("cannot create {}: {e}; ACL prof capture is off", p.run_dir.display()));
                    w.acl_done = true;
                } else {
                    w.acl = aclprof::Session::start(&p.run_dir, dev, &p.acl);
                    w.acl_started = now;
                    w.acl_done = w.acl.is_none();
                    if w.acl.is_some() && mstx::available() {
                        STATE.fetch_or(MSTX, Ordering::AcqRel);
                    }
                }
            }
        }
        if w.mspti.is_some() && now.saturating_sub(w.last_flush) >= FLUSH_EVERY_NS {
            w.last_flush = now;
            let n = w.mspti.as_mut().map_or(0, |s| s.flush());
            Self::note_dropped(w, n);
        }
        Self::drain(w, core);
    }

    fn note_dropped(w: &mut Work, n: u64) {
        if n > 0 {
            w.dropped += n;
            log::once(Level::Warning, "dev-dropped", &format!("MSPTI dropped {n} device records (buffers full); counted as device_dropped"));
            mspti::push(mspti::Activity::Dropped { ts: monotonic_ns(), count: n });
        }
    }

    fn drain(w: &mut Work, core: &Core) {
        let acts = mspti::drain();
        if !acts.is_empty() {
            let e = w.emitter.get_or_insert_with(|| records::Emitter::new(core));
            for a in acts {
                e.emit(core, a);
            }
        }
        if let Some(r) = core.ring_if_open() {
            r.counters().get(Counter::DeviceDropped).store(w.dropped + mspti::lost(), Ordering::Relaxed);
        }
    }
}
