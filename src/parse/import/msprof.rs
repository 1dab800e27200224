//! CANN msprof timelines (`PROF_*/mindstudio_profiler_output/msprof_*.json`, CANN_ABI §7), as
//! exported by `msprof --export=on`. Their timestamps are already epoch µs (CANN_ABI §8), the
//! clock the service records are rendered in, so events keep their `ts`. Pids that collide with
//! a service process's trace pid are moved up by 300,000,000; flow ids get the suffix
//! `_<n>` (n = the import's number) so that flows of different files never join; the
//! `process_sort_index` metadata is dropped (the service processes sort first).

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value as J;

use super::{read_events, Sink};
use crate::parse::build::Model;

/// Offset added to msprof pids that collide with service trace pids.
pub const PID_SHIFT: u64 = 300_000_000;

/// Import one msprof timeline into `sink`; returns the summary note.
pub fn import(path: &Path, m: &Model, n: usize, sink: &mut Sink) -> Result<String, String> {
    let (events, _) = read_events(path)?;
    let ours: HashSet<u64> = m.procs.iter().map(|p| p.trace_pid).collect();
    let pid_of = |p: &J| -> J {
        match p.as_u64() {
            Some(v) if ours.contains(&v) => J::from(v + PID_SHIFT),
            _ => p.clone(),
        }
    };
    // Track names for profiler.db first.
    for e in &events {
        if e["ph"] == "M" && e["name"] == "thread_name" {
            if let (Some(pid), Some(name)) = (pid_of(&e["pid"]).as_u64(), e["args"]["name"].as_str()) {
                sink.name_track(pid, &e["tid"], name);
            }
        }
    }
    let mut count = 0u64;
    for mut e in events {
        if e["ph"].as_str().is_none() || (e["ph"] == "M" && e["name"] == "process_sort_index") {
            continue;
        }
        if e.get("pid").is_some() {
            e["pid"] = pid_of(&e["pid"]);
        }
        if matches!(e["ph"].as_str(), Some("s" | "t" | "f")) {
            if let Some(id) = e.get("id").cloned() {
                e["id"] = J::String(format!("{}_{n}", super::tid_key(&id)));
            }
        }
        sink.event(&e, None).map_err(|x| x.to_string())?;
        count += 1;
    }
    if count == 0 {
        return Err("no trace events".into());
    }
    Ok(format!("imported msprof timeline {} ({count} events)", path.display()))
}
