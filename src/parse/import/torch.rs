//! The framework profiler's traces (`acl_task_time: 3`; written by the shim's `torch_prof.py`
//! under `<run_dir>/torch_prof/<host>-<pid>/`: `trace_<n>.json`, torch's chrome trace, and
//! `clock_<n>.json`, its clock anchors).
//!
//! Alignment: torch stamps events on its own time base. Each anchor is a `record_function`
//! named `ms_service_profiler::clock_anchor#<k>` entered between two readings of the capture
//! clock (CLOCK_MONOTONIC, `mono_before` / `mono_after`); its trace event lies inside that
//! window, so the midpoints pair a torch time with a capture-clock time (error ≤ half the
//! window minus the event's duration, a few µs). One pair gives the offset; two give the rate
//! too (used when within 0.1 % of 1). Capture-clock times then go through the same
//! monotonic → epoch mapping as the process's own records (its meta anchors), so torch ops and
//! service spans share one timeline. Without a usable anchor the trace's `baseTimeNanoseconds`
//! + `ts` (torch ≥ 2.x: epoch-based) is used and the note says so.
//!
//! Events move to the captured process (its trace pid), on tracks `Torch(<torch tid>)`
//! (`Torch <torch pid>/<tid>` for events torch put under another pid, e.g. GPU streams); torch's
//! own metadata events are replaced by ours; flow ids get the suffix `_torch<n>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as J};

use super::{read_events, tid_key, Sink};
use crate::parse::build::Model;
use crate::parse::export::trace::trace_tid;
use crate::reader::Process;

/// Pid offset for traces whose process was not captured.
pub const PID_SHIFT: u64 = 200_000_000;

/// A linear map from torch ns to capture-clock ns: `mono = rate × torch + offset`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockMap {
    /// Rate (1 for a single anchor).
    pub rate: f64,
    /// Offset, ns.
    pub offset: f64,
}

impl ClockMap {
    /// From (torch ns, capture ns) pairs: the first and last pair give the rate when it is
    /// within 0.1 % of 1 (else rate 1 and the mean offset).
    pub fn fit(pairs: &[(f64, f64)]) -> Option<ClockMap> {
        let (first, last) = (pairs.first()?, pairs.last()?);
        if pairs.len() >= 2 && last.0 - first.0 > 1e6 {
            let rate = (last.1 - first.1) / (last.0 - first.0);
            if (rate - 1.0).abs() < 1e-3 {
                return Some(ClockMap { rate, offset: first.1 - rate * first.0 });
            }
        }
        let offset = pairs.iter().map(|p| p.1 - p.0).sum::<f64>() / pairs.len() as f64;
        Some(ClockMap { rate: 1.0, offset })
    }

    /// Capture-clock ns of a torch time.
    pub fn apply(&self, torch_ns: f64) -> f64 {
        self.rate * torch_ns + self.offset
    }
}

/// The (torch ns, capture ns) pair of each anchor found in the trace, and the worst error bound.
pub fn anchor_pairs(anchors: &[J], events: &[J]) -> (Vec<(f64, f64)>, f64) {
    let mut by_name: HashMap<&str, &J> = HashMap::new();
    for e in events {
        if let Some(n) = e["name"].as_str() {
            if n.starts_with("ms_service_profiler::clock_anchor#") && e["ph"] == "X" {
                by_name.entry(n).or_insert(e);
            }
        }
    }
    let mut pairs = Vec::new();
    let mut err: f64 = 0.0;
    for a in anchors {
        let (Some(name), Some(m0), Some(m1)) = (a["name"].as_str(), a["mono_before"].as_f64(), a["mono_after"].as_f64()) else { continue };
        let Some(e) = by_name.get(name) else { continue };
        let (Some(ts), dur) = (e["ts"].as_f64(), e["dur"].as_f64().unwrap_or(0.0)) else { continue };
        pairs.push(((ts + dur / 2.0) * 1e3, (m0 + m1) / 2.0));
        err = err.max(((m1 - m0) - dur * 1e3).max(0.0) / 2.0);
    }
    (pairs, err)
}

fn trace_file(clock: &Path, doc: &J) -> Option<PathBuf> {
    let dir = clock.parent()?;
    let named = dir.join(doc["trace"].as_str()?);
    if named.is_file() {
        return Some(named);
    }
    // torch_npu: <dir>/*_ascend_pt/ASCEND_PROFILER_OUTPUT/trace_view.json (newest).
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path().join("ASCEND_PROFILER_OUTPUT").join("trace_view.json")).filter(|p| p.is_file()).collect();
    found.sort();
    found.pop()
}

/// Import the trace of one `clock_<n>.json` into `sink`; returns the summary note.
pub fn import(clock: &Path, procs: &[Process], m: &Model, n: usize, sink: &mut Sink) -> Result<String, String> {
    let doc: J = serde_json::from_slice(&std::fs::read(clock).map_err(|e| e.to_string())?).map_err(|e| format!("clock file: {e}"))?;
    let trace = trace_file(clock, &doc).ok_or("no trace file next to it")?;
    let (events, top) = read_events(&trace)?;
    let pid = doc["pid"].as_u64().unwrap_or(0) as u32;
    let host = doc["hostname"].as_str().unwrap_or("");
    let proc = (0..procs.len())
        .find(|&i| procs[i].meta.pid == pid && (m.procs[i].hostname == host || procs[i].meta.hostname == host))
        .or_else(|| (0..procs.len()).find(|&i| procs[i].meta.pid == pid));
    let anchors = doc["anchors"].as_array().cloned().unwrap_or_default();
    let (pairs, err) = anchor_pairs(&anchors, &events);
    let first_real = anchors
        .first()
        .and_then(|a| Some((a["real_before"].as_f64()? + a["real_after"].as_f64()?) / 2.0 - (a["mono_before"].as_f64()? + a["mono_after"].as_f64()?) / 2.0));
    let map = ClockMap::fit(&pairs);
    let base = top["baseTimeNanoseconds"].as_f64();
    // torch µs → epoch ns.
    let wall = |ts_us: f64| -> Option<i64> {
        let t = ts_us * 1e3;
        match (map, proc) {
            (Some(c), Some(i)) => Some(procs[i].meta.to_wall(c.apply(t).max(0.0) as u64)),
            (Some(c), None) => Some((c.apply(t) + first_real?) as i64),
            (None, _) => Some((base? + t) as i64),
        }
    };
    if map.is_none() && base.is_none() {
        return Err("no clock anchor in the trace and no baseTimeNanoseconds".into());
    }
    let trace_pid = proc.map(|i| m.procs[i].trace_pid).unwrap_or(PID_SHIFT + pid as u64);
    let mut tracks: HashMap<(String, String), u32> = HashMap::new();
    let mut meta = Vec::new();
    let mut count = 0u64;
    for mut e in events {
        let Some(ph) = e["ph"].as_str().map(str::to_string) else { continue };
        if ph == "M" {
            continue;
        }
        let Some(ts) = e["ts"].as_f64().and_then(&wall) else { continue };
        let key = (tid_key(&e["pid"]), tid_key(&e["tid"]));
        let next = tracks.len() as u32 + 1;
        let tid = *tracks.entry(key.clone()).or_insert_with(|| {
            let t = trace_tid("Torch", next);
            let name = if key.0 == pid.to_string() { format!("Torch({})", key.1) } else { format!("Torch {}/{}", key.0, key.1) };
            sink.name_track(trace_pid, &J::from(t), &name);
            meta.push(json!({"name": "thread_name", "ph": "M", "pid": trace_pid, "tid": t, "args": {"name": name}}));
            meta.push(json!({"name": "thread_sort_index", "ph": "M", "pid": trace_pid, "tid": t, "args": {"sort_index": 20 + next}}));
            t
        });
        e["pid"] = J::from(trace_pid);
        e["tid"] = J::from(tid);
        if matches!(ph.as_str(), "s" | "t" | "f") {
            if let Some(id) = e.get("id").cloned() {
                e["id"] = J::String(format!("{}_torch{n}", tid_key(&id)));
            }
        }
        sink.event(&e, Some(ts)).map_err(|x| x.to_string())?;
        count += 1;
    }
    if proc.is_none() {
        meta.push(json!({"name": "process_name", "ph": "M", "pid": trace_pid, "args": {"name": format!("torch {host}-{pid}")}}));
    }
    for e in &meta {
        sink.event(e, None).map_err(|x| x.to_string())?;
    }
    let how = match (map, proc) {
        (Some(_), Some(_)) => format!("aligned by {} clock anchor(s), error ≤ {:.1} µs", pairs.len(), err / 1e3),
        (Some(_), None) => format!("aligned by {} clock anchor(s); process {host}-{pid} not in the capture", pairs.len()),
        (None, _) => "no clock anchor found: torch's baseTimeNanoseconds taken as epoch (unaligned)".to_string(),
    };
    Ok(format!("imported torch profiler trace {} ({count} events; {how})", trace.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_offset_and_rate() {
        let c = ClockMap::fit(&[(1000.0, 5000.0)]).unwrap();
        assert_eq!(c.apply(2000.0), 6000.0);
        let c = ClockMap::fit(&[(0.0, 100.0), (1e9, 1e9 + 100.0 + 1e5)]).unwrap();
        assert!((c.rate - 1.0001).abs() < 1e-12);
        assert!((c.apply(5e8) - (5e8 * 1.0001 + 100.0)).abs() < 1e-3);
        // An implausible rate falls back to the mean offset.
        let c = ClockMap::fit(&[(0.0, 100.0), (1e9, 3e9)]).unwrap();
        assert_eq!(c.rate, 1.0);
        assert!(ClockMap::fit(&[]).is_none());
    }

    #[test]
    fn anchors_pair_with_their_events() {
        let anchors = vec![json!({"name": "ms_service_profiler::clock_anchor#0", "mono_before": 1_000_000.0, "mono_after": 1_010_000.0})];
        let events = vec![json!({"ph": "X", "name": "ms_service_profiler::clock_anchor#0", "ts": 50.0, "dur": 6.0})];
        let (p, err) = anchor_pairs(&anchors, &events);
        assert_eq!(p, vec![(53_000.0, 1_005_000.0)]);
        assert_eq!(err, 2000.0);
    }
}
