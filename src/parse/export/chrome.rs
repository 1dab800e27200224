//! `chrome_tracing.json`: a bare JSON array of trace events (µs) — the per-process fragments
//! written while reading, then one flow per request across processes (`s`/`t`/`f`, `bp:"e"`),
//! then thread and process metadata (`M`). Loads in Perfetto UI and chrome://tracing.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::parse::build::Model;
use crate::parse::model::partial::FlowPt;
use crate::parse::model::process::Role;
use crate::parse::time;

/// Sort index of a thread by domain: `Execute, Schedule, Communication, KVCache,
/// Schedule.KVCache, Engine, Api, Kernel`, then the rest.
pub fn thread_sort_index(domain: &str) -> u32 {
    ["Execute", "Schedule", "Communication", "KVCache", "Schedule.KVCache", "Engine", "Api", "Kernel"].iter().position(|d| *d == domain).unwrap_or(8) as u32
}

/// The phase of flow point `k` of `n`: `s` (start), `t` (step) or `f` (finish).
pub fn flow_phase(k: usize, n: usize) -> &'static str {
    if k == 0 {
        "s"
    } else if k + 1 == n {
        "f"
    } else {
        "t"
    }
}

/// `s` as a JSON string (copied as it is when nothing needs escaping).
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// One flow event into `line` (cleared first): name `flow_<rid>`, id and cat `rid`, `bp:"e"`
/// except on `s`.
fn flow_line(line: &mut Vec<u8>, rid: &str, ph: &str, p: &FlowPt) {
    line.clear();
    line.extend_from_slice(b"{\"name\":");
    let name_at = line.len();
    json_str(line, rid);
    // `"flow_` + the escaped rid + `"`: the rid's JSON text with the prefix inserted.
    line.splice(name_at + 1..name_at + 1, b"flow_".iter().copied());
    line.extend_from_slice(b",\"ph\":\"");
    line.extend_from_slice(ph.as_bytes());
    line.extend_from_slice(b"\",\"id\":");
    json_str(line, rid);
    line.extend_from_slice(b",\"cat\":");
    json_str(line, rid);
    line.extend_from_slice(b",\"pid\":");
    line.extend_from_slice(itoa::Buffer::new().format(p.pid).as_bytes());
    line.extend_from_slice(b",\"tid\":");
    line.extend_from_slice(itoa::Buffer::new().format(p.tid).as_bytes());
    line.extend_from_slice(b",\"ts\":");
    time::us_text_into(line, p.ts);
    if ph != "s" {
        line.extend_from_slice(b",\"bp\":\"e\"");
    }
    line.push(b'}');
}

/// Process order: host, then role (API server, EngineCore, worker, other), DP rank, pid.
pub fn process_order(m: &Model) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..m.procs.len()).collect();
    idx.sort_by_key(|&i| {
        let p = &m.procs[i];
        (p.host_index, m.roles[i], p.dp_rank.unwrap_or(-1), p.pid, i)
    });
    idx
}

/// The label of a process: `<hostname>[,dp<N>]`.
pub fn label(m: &Model, i: usize) -> String {
    let p = &m.procs[i];
    match p.dp_rank {
        Some(d) => format!("{},dp{d}", p.hostname),
        None => p.hostname.clone(),
    }
}

/// The display name of a process.
pub fn process_name(m: &Model, i: usize) -> String {
    let r: Role = m.roles[i];
    format!("{} {}", r.name(), m.procs[i].pid)
}

/// Join the fragments and append flows and metadata into `<dir>/chrome_tracing.json`.
/// The fragments are removed.
pub fn write(m: &Model, dir: &Path, fragments: &[PathBuf]) -> std::io::Result<()> {
    let path = dir.join("chrome_tracing.json");
    let mut w = BufWriter::with_capacity(1 << 20, crate::parse::output::create_file(&path)?);
    w.write_all(b"[\n")?;
    let mut first = true;
    let mut sep = |w: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        if !first {
            w.write_all(b",\n")?;
        }
        first = false;
        Ok(())
    };
    for f in fragments {
        let len = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        if len > 0 {
            sep(&mut w)?;
            std::io::copy(&mut std::fs::File::open(f)?, &mut w)?;
        }
        let _ = std::fs::remove_file(f);
    }
    // One line per flow point, built in a reused buffer.
    let mut line = Vec::with_capacity(256);
    m.for_each_flow_point(
        |rid, p, ph| {
            sep(&mut w)?;
            flow_line(&mut line, rid, ph, &p);
            w.write_all(&line)
        },
        |e| e,
    )?;
    for (i, threads) in m.threads.iter().enumerate() {
        let pid = m.procs[i].trace_pid;
        for t in threads {
            sep(&mut w)?;
            write!(w, "{}", json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": t.tid, "args": {"name": t.name}}))?;
            sep(&mut w)?;
            write!(w, "{}", json!({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": t.tid, "args": {"sort_index": thread_sort_index(&t.domain)}}))?;
        }
    }
    for (rank, &i) in process_order(m).iter().enumerate() {
        let pid = m.procs[i].trace_pid;
        sep(&mut w)?;
        write!(w, "{}", json!({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": process_name(m, i)}}))?;
        sep(&mut w)?;
        write!(w, "{}", json!({"name": "process_labels", "ph": "M", "pid": pid, "args": {"labels": label(m, i)}}))?;
        sep(&mut w)?;
        write!(w, "{}", json!({"name": "process_sort_index", "ph": "M", "pid": pid, "args": {"sort_index": rank}}))?;
    }
    w.write_all(b"\n]\n")?;
    w.flush()
}
