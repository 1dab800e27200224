//! `request_status.csv`: queue sizes over time (waiting / running / swapped), one row per
//! queue event, forward-filled per process.

use std::collections::HashMap;
use std::path::Path;

use super::csv::{ms3_into, num_into, Csv};
use crate::parse::build::Model;
use crate::parse::time;

/// Column names, in order.
pub const COLUMNS: [&str; 8] = ["hostuid", "pid", "start_datetime", "relative_timestamp(ms)", "waiting", "running", "swapped", "timestamp(ms)"];

/// One row: (process index, ts ns, waiting, running, swapped).
pub type StatusRow = (usize, i64, f64, f64, f64);

/// The rows, forward-filled per process.
pub fn rows(m: &Model) -> Vec<StatusRow> {
    let mut state: HashMap<usize, (f64, f64, f64)> = HashMap::new();
    let mut out = Vec::with_capacity(m.queue.len());
    for q in &m.queue {
        let s = state.entry(q.proc).or_default();
        match &*q.queue {
            "WAITING" => s.0 = q.size,
            "RUNNING" => s.1 = q.size,
            "SWAPPED" => s.2 = q.size,
            _ => continue,
        }
        out.push((q.proc, q.ts, s.0, s.1, s.2));
    }
    out
}

/// Write `request_status.csv`. Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    let rows = rows(m);
    let Some(t0) = rows.first().map(|r| r.1) else { return Ok(false) };
    let mut c = Csv::create(&dir.join("request_status.csv"), &COLUMNS)?;
    let mut df = time::DateFmt::default();
    for (p, ts, w, r, s) in rows {
        let pi = &m.procs[p];
        c.cell(&pi.hostname);
        c.cell_raw(|o| o.extend_from_slice(itoa::Buffer::new().format(pi.pid).as_bytes()));
        c.cell_raw(|o| df.write(o, ts, pi.offset_s));
        c.cell_raw(|o| ms3_into(o, ts - t0));
        for x in [w, r, s] {
            c.cell_raw(|o| num_into(o, x));
        }
        c.cell_raw(|o| ms3_into(o, ts));
        c.end()?;
    }
    c.finish()?;
    Ok(true)
}
