//! `spec_decode.csv`: one row per (specDecoding step, request).

use std::path::Path;

use super::csv::{ms3, num, Csv};
use crate::parse::build::Model;
use crate::parse::model::batch::{round4, spec_tokens};
use crate::parse::time;

/// Column names, in order.
pub const COLUMNS: [&str; 10] =
    ["rid", "iter", "prof_id", "start_datetime", "end_datetime", "during_time(ms)", "spec_tokens", "accepted_tokens", "accepted_ratio", "draft_model_time_ms"];

/// Write `spec_decode.csv` when `specDecoding` rows exist. Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    let rows: Vec<_> = m.batches.iter().filter(|b| b.name == "specDecoding").collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let mut c = Csv::create(&dir.join("spec_decode.csv"), &COLUMNS)?;
    for b in rows {
        let p = &m.procs[b.proc as usize];
        for e in b.entries.iter() {
            let spec = spec_tokens(e);
            let acc = e.spec_accepted.unwrap_or(0.0);
            c.row(&[
                m.map.resolve(&e.rid).to_string(),
                e.iter.map(|i| i.to_string()).unwrap_or_default(),
                p.prof_id.clone(),
                time::datetime(b.start, p.offset_s),
                time::datetime(b.end, p.offset_s),
                ms3(b.dur()),
                num(spec),
                num(acc),
                if spec > 0.0 { num(round4(acc / spec)) } else { String::new() },
                ms3(b.dur()),
            ])?;
        }
    }
    c.finish()?;
    Ok(true)
}
