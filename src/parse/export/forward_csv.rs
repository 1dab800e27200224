//! `forward.csv`: one row per `forward` span, with bubbles and inherited batch info.

use std::path::Path;

use super::csv::{float, float_into, ms2, ms3, ms3_into, Csv};
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
        f.bubble.map(|b| ms2(b.get())).unwrap_or_default(),
        f.batch_size.get().map(float).unwrap_or_default(),
        f.batch_type.as_deref().unwrap_or_default().to_string(),
        f.iter.to_string(),
        f.dp_rank.as_deref().map(str::to_string).or_else(|| p.dp_rank.map(|d| d.to_string())).unwrap_or_default(),
        p.prof_id.clone(),
        p.hostname.clone(),
        ms3(f.start),
        ms3(f.end),
    ]
}

/// [`cells`], written straight into `c`'s line (no `String` per cell).
fn row(c: &mut Csv, m: &Model, f: &FwdRow, df: &mut time::DateFmt) {
    let p = &m.procs[f.proc];
    let ms2 = |o: &mut Vec<u8>, ns: i64| {
        use std::io::Write;
        let _ = write!(o, "{:.2}", ns as f64 / 1e6);
    };
    c.cell("forward");
    c.cell_raw(|o| ms2(o, f.relative));
    c.cell_raw(|o| df.write(o, f.start, p.offset_s));
    c.cell_raw(|o| df.write(o, f.end, p.offset_s));
    c.cell_raw(|o| ms3_into(o, f.end - f.start));
    c.cell_raw(|o| {
        if let Some(b) = f.bubble {
            ms2(o, b.get())
        }
    });
    c.cell_raw(|o| {
        if let Some(b) = f.batch_size.get() {
            float_into(o, b)
        }
    });
    c.cell(f.batch_type.as_deref().unwrap_or_default());
    c.cell_raw(|o| o.extend_from_slice(itoa::Buffer::new().format(f.iter).as_bytes()));
    match (&f.dp_rank, p.dp_rank) {
        (Some(d), _) => c.cell(d),
        (None, Some(d)) => c.cell_raw(|o| o.extend_from_slice(itoa::Buffer::new().format(d).as_bytes())),
        (None, None) => c.cell(""),
    }
    c.cell(&p.prof_id);
    c.cell(&p.hostname);
    c.cell_raw(|o| ms3_into(o, f.start));
    c.cell_raw(|o| ms3_into(o, f.end));
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
    let mut df = time::DateFmt::default();
    for (i, f) in m.forwards.iter().enumerate() {
        if dev {
            let mut r = cells(m, f).to_vec();
            r.extend(super::device_cols::cells(m.device.forward_time(i)));
            c.row(&r)?;
        } else {
            row(&mut c, m, f, &mut df);
            c.end()?;
        }
    }
    c.finish()?;
    Ok(true)
}
