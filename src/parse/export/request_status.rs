//! `request_status.csv`: queue sizes over time (waiting / running / swapped), one row per
//! queue event, forward-filled per process.

use std::collections::HashMap;
use std::path::Path;

use super::csv::{ms3_into, num_into, Csv};
use crate::parse::build::Model;
use crate::parse::model::partial::QueueName;
use crate::parse::time;

/// Column names, in order.
pub const COLUMNS: [&str; 8] = ["hostuid", "pid", "start_datetime", "relative_timestamp(ms)", "waiting", "running", "swapped", "timestamp(ms)"];

/// One row: (process index, ts ns, waiting, running, swapped).
pub type StatusRow = (usize, i64, f64, f64, f64);

/// The rows, forward-filled per process (streamed: one row per queue sample).
pub fn rows(m: &Model) -> impl Iterator<Item = StatusRow> + '_ {
    let mut state: HashMap<u32, (f64, f64, f64)> = HashMap::new();
    m.queue.iter().map(move |q| {
        let s = state.entry(q.proc).or_default();
        match q.queue {
            QueueName::Waiting => s.0 = q.size,
            QueueName::Running => s.1 = q.size,
            QueueName::Swapped => s.2 = q.size,
        }
        (q.proc as usize, q.ts, s.0, s.1, s.2)
    })
}

/// Write `request_status.csv`. Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    let Some(t0) = m.queue.first().map(|q| q.ts) else { return Ok(false) };
    let mut c = Csv::create(&dir.join("request_status.csv"), &COLUMNS)?;
    let mut df = time::DateFmt::default();
    for (p, ts, w, r, s) in rows(m) {
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
