//! `forward.csv`: one row per `forward` span, with bubbles and inherited batch info.

use std::path::Path;

use super::csv::{float, ms2, ms3, Csv};
use crate::parse::build::Model;
use crate::parse::model::forward::FwdRow;
use crate::parse::time;

/// Column names, in order.
pub const COLUMNS: [&str; 14] = [
    "name",
    "relative_start_time(ms)",
    "start_datetime",
    "end_datetime",
    "during_time(ms)",
    "bubble_time(ms)",
    "batch_size",
    "batch_type",
    "forward_iter",
    "dp_rank",
    "prof_id",
    "hostname",
    "start_time(ms)",
    "end_time(ms)",
];

/// The cells of one row.
pub fn cells(m: &Model, f: &FwdRow) -> [String; 14] {
    let p = &m.procs[f.proc];
    [
        "forward".into(),
        ms2(f.relative),
        time::datetime(f.start, p.offset_s),
        time::datetime(f.end, p.offset_s),
        ms3(f.end - f.start),
        f.bubble.map(ms2).unwrap_or_default(),
        f.batch_size.map(float).unwrap_or_default(),
        f.batch_type.clone().unwrap_or_default(),
        f.iter.to_string(),
        f.dp_rank.clone().or_else(|| p.dp_rank.map(|d| d.to_string())).unwrap_or_default(),
        p.prof_id.clone(),
        p.hostname.clone(),
        ms3(f.start),
        ms3(f.end),
    ]
}

/// Write `forward.csv` (needs forward rows and batch rows). Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    if m.forwards.is_empty() || m.batches.is_empty() {
        return Ok(false);
    }
    let dev = m.device.has_activity();
    let mut header = COLUMNS.to_vec();
    if dev {
        header.extend(super::device_cols::COLUMNS);
    }
    let mut c = Csv::create(&dir.join("forward.csv"), &header)?;
    for (i, f) in m.forwards.iter().enumerate() {
        if dev {
            let mut r = cells(m, f).to_vec();
            r.extend(super::device_cols::cells(m.device.forward[i]));
            c.row(&r)?;
        } else {
            c.row(&cells(m, f))?;
        }
    }
    c.finish()?;
    Ok(true)
}
