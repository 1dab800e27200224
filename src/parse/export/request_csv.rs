//! `request.csv`: one row per request (after id mapping), sorted by start.

use std::path::Path;

use super::csv::{ms3, num, Csv};
use crate::parse::build::Model;
use crate::parse::time;

/// Column names, in order.
pub const COLUMNS: [&str; 9] = [
    "http_rid",
    "start_datetime",
    "recv_token_size",
    "reply_token_size",
    "execution_time(ms)",
    "queue_wait_time(ms)",
    "first_token_latency(ms)",
    "cache_hit_rate",
    "start_time(ms)",
];

/// The cells of every row, one row at a time (shared with profiler.db).
pub fn rows(m: &Model) -> impl Iterator<Item = [String; 9]> + '_ {
    m.requests.iter().map(|r| {
        let a = &r.acc;
        // Datetimes use the offset of the process that saw httpReq; all processes of a host
        // share it, so the first process's offset is used.
        let off = m.procs.first().map(|p| p.offset_s).unwrap_or(0);
        [
            r.rid.clone(),
            a.http_req().map(|t| time::datetime(t, off)).unwrap_or_default(),
            a.recv_tokens().map(|f| num(f.v)).unwrap_or_default(),
            a.reply().map(num).unwrap_or_default(),
            a.execution_ns().map(ms3).unwrap_or_default(),
            ms3(a.queue_wait_ns().unwrap_or(0)),
            ms3(a.ttft_ns().unwrap_or(0)),
            a.cache_hit().map(|f| num(f.v)).unwrap_or_else(|| "N/A".into()),
            a.http_req().map(|t| t.div_euclid(1_000_000).to_string()).unwrap_or_default(),
        ]
    })
}

/// Whether request.csv has content (some token count or execution time).
pub fn has_content(m: &Model) -> bool {
    m.requests
        .iter()
        .any(|r| r.acc.recv_tokens().is_some_and(|f| f.v != 0.0) || r.acc.reply().is_some_and(|v| v != 0.0) || r.acc.execution_ns().is_some_and(|v| v != 0))
}

/// Write `request.csv` into `dir`. Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    if !has_content(m) {
        return Ok(false);
    }
    let mut c = Csv::create(&dir.join("request.csv"), &COLUMNS)?;
    for r in rows(m) {
        c.row(&r)?;
    }
    c.finish()?;
    Ok(true)
}
