//! `batch.csv`: one row per schedule / execute / spec-decode span, in time order.

use std::path::Path;

use super::csv::{float, ms3, num, Csv};
use crate::parse::build::Model;
use crate::parse::model::batch::BatchRow;
use crate::parse::time;

/// Which optional column groups are present.
pub struct Layout {
    /// KV columns (some value non-zero).
    pub kv: bool,
    /// Spec-decode columns (`specDecoding` rows exist).
    pub spec: bool,
    /// Device-time columns (the capture holds device activity).
    pub device: bool,
}

/// Decide the optional columns.
pub fn layout(m: &Model) -> Layout {
    Layout {
        kv: m
            .batches
            .iter()
            .any(|b| b.kv.is_some_and(|k| k.total != 0.0 || k.used != 0.0 || k.free != 0.0 || k.allocated != 0.0 || k.freed != 0.0 || k.rate != 0.0)),
        spec: m.batches.iter().any(|b| b.name == "specDecoding"),
        device: m.device.has_activity(),
    }
}

/// The header for `l`.
pub fn header(l: &Layout) -> Vec<&'static str> {
    let mut h = vec!["name", "res_list", "start_datetime", "end_datetime", "during_time(ms)", "batch_type", "prof_id", "batch_size"];
    if l.kv {
        h.extend(["total_blocks", "used_blocks", "free_blocks", "blocks_allocated", "blocks_freed", "kvcache_usage_rate"]);
    }
    h.extend(["prefill_batch_size", "decode_batch_size", "prefill_scheduled_tokens", "decode_scheduled_tokens", "total_scheduled_tokens", "dp_rank"]);
    if l.spec {
        h.extend(["accepted_ratio", "accepted_ratio_per_pos"]);
    }
    h.extend(["start_time(ms)", "end_time(ms)"]);
    if l.device {
        h.extend(super::device_cols::COLUMNS);
    }
    h
}

/// The cells of one row.
pub fn cells(m: &Model, b: &BatchRow, l: &Layout) -> Vec<String> {
    let p = &m.procs[b.proc];
    let mut r = vec![
        b.name.clone(),
        b.res_list(&m.map),
        time::datetime(b.start, p.offset_s),
        time::datetime(b.end, p.offset_s),
        ms3(b.dur()),
        b.batch_type.clone(),
        p.prof_id.clone(),
        float(b.batch_size()),
    ];
    if l.kv {
        let k = if b.name == "specDecoding" { Default::default() } else { b.kv.unwrap_or_default() };
        r.extend([num(k.total), num(k.used), num(k.free), num(k.allocated), num(k.freed), num(k.rate)]);
    }
    let (pt, dt) = b.pd_tokens;
    r.extend([b.pd_size.0.to_string(), b.pd_size.1.to_string(), num(pt), num(dt), num(pt + dt), p.dp_cell()]);
    if l.spec {
        if b.name == "specDecoding" {
            let (ratio, per) = b.spec_ratios();
            r.push(ratio.map(num).unwrap_or_default());
            r.push(per.map(|v| v.to_string()).unwrap_or_default());
        } else {
            r.extend([String::new(), String::new()]);
        }
    }
    r.extend([ms3(b.start), ms3(b.end)]);
    r
}

/// Write `batch.csv`. Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    if m.batches.is_empty() {
        return Ok(false);
    }
    let l = layout(m);
    let mut c = Csv::create(&dir.join("batch.csv"), &header(&l))?;
    for (i, b) in m.batches.iter().enumerate() {
        let mut r = cells(m, b, &l);
        if l.device {
            r.extend(super::device_cols::cells(m.device.batch[i]));
        }
        c.row(&r)?;
    }
    c.finish()?;
    Ok(true)
}
