//! `batch.csv`: one row per schedule / execute / spec-decode span, in time order.

use std::path::Path;

use super::csv::{float_into, ms3_into, num, num_into, Csv};
use crate::parse::build::Model;
use crate::parse::model::batch::BatchRow;
use crate::parse::model::rid::{RidEntry, Rids};
use crate::parse::model::spill::{entries_of, SpillRef};
use crate::parse::time::DateFmt;

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
        kv: m.batches.iter().any(|b| {
            b.kv_cols(&m.kv).is_some_and(|k| k.total != 0.0 || k.used != 0.0 || k.free != 0.0 || k.allocated != 0.0 || k.freed != 0.0 || k.rate != 0.0)
        }),
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

/// Identifies a row's request list: its spill place, or its in-memory list, and the shape.
type ResKey = (Option<SpillRef>, *const Vec<RidEntry>, bool);

/// What consecutive rows can reuse: the datetime text of the current second and, per process,
/// the last `res_list` cell (a `modelExec` row shares its schedule row's list; the rows of
/// several processes interleave in time order).
#[derive(Default)]
pub struct RowState {
    df: DateFmt,
    res: Vec<Option<(ResKey, Vec<u8>)>>,
}

/// Append one row to `c` (cells written in place: no `String` per cell).
pub fn write_row(c: &mut Csv, m: &Model, b: &BatchRow, l: &Layout, st: &mut RowState) {
    let proc = b.proc as usize;
    let p = &m.procs[proc];
    c.cell(b.name.as_str());
    let key = (b.spilled, std::sync::Arc::as_ptr(&b.entries), b.dicts);
    if st.res.len() <= proc {
        st.res.resize_with(proc + 1, || None);
    }
    let slot = &mut st.res[proc];
    if slot.as_ref().map_or(true, |(k, _)| *k != key) {
        let mut cell = slot.take().map(|(_, c)| c).unwrap_or_default();
        cell.clear();
        let entries = entries_of(&m.spill, b);
        if entries.is_empty() {
            cell.extend_from_slice(b"[]");
        } else {
            // Non-empty JSON always holds `"`: the cell is quoted, its quotes doubled.
            cell.push(b'"');
            Rids::write_json_bytes(&mut cell, &entries, b.dicts, &m.map, true);
            cell.push(b'"');
        }
        *slot = Some((key, cell));
    }
    let cell = &slot.as_ref().expect("filled above").1;
    c.cell_raw(|o| o.extend_from_slice(cell));
    let df = &mut st.df;
    c.cell_raw(|o| df.write(o, b.start, p.offset_s));
    c.cell_raw(|o| df.write(o, b.end, p.offset_s));
    c.cell_raw(|o| ms3_into(o, b.dur()));
    c.cell(b.batch_type());
    c.cell(&p.prof_id);
    c.cell_raw(|o| float_into(o, b.batch_size()));
    if l.kv {
        let k = if b.name == "specDecoding" { Default::default() } else { b.kv_cols(&m.kv).unwrap_or_default() };
        for x in [k.total, k.used, k.free, k.allocated, k.freed, k.rate] {
            c.cell_raw(|o| num_into(o, x));
        }
    }
    let (pt, dt) = b.pd_tokens;
    c.cell_raw(|o| num_into(o, b.pd_size.0 as f64));
    c.cell_raw(|o| num_into(o, b.pd_size.1 as f64));
    for x in [pt, dt, pt + dt] {
        c.cell_raw(|o| num_into(o, x));
    }
    c.cell(&p.dp_cell());
    if l.spec {
        if b.name == "specDecoding" {
            let (ratio, per) = b.spec_ratios();
            c.cell(&ratio.map(num).unwrap_or_default());
            c.cell(&per.map(|v| v.to_string()).unwrap_or_default());
        } else {
            c.cell("");
            c.cell("");
        }
    }
    c.cell_raw(|o| ms3_into(o, b.start));
    c.cell_raw(|o| ms3_into(o, b.end));
}

/// Write `batch.csv`. Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    if m.batches.is_empty() {
        return Ok(false);
    }
    let l = layout(m);
    let mut c = Csv::create(&dir.join("batch.csv"), &header(&l))?;
    let mut st = RowState::default();
    for (i, b) in m.batches.iter().enumerate() {
        write_row(&mut c, m, b, &l, &mut st);
        if l.device {
            for cell in super::device_cols::cells(m.device.batch_time(i)) {
                c.cell(&cell);
            }
        }
        c.end()?;
    }
    c.finish()?;
    Ok(true)
}
