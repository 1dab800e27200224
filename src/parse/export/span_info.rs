//! `span_info/<span_name>.csv`: every span of the default names (`forward`, `BatchSchedule`,
//! `batchFrameworkProcessing`) and of the `--span` names.

use std::collections::BTreeMap;
use std::path::Path;

use super::csv::{ms3_into, Csv};
use crate::parse::build::Model;
use crate::parse::model::partial::SpanRow;
use crate::parse::time;

/// Column names, in order.
pub const COLUMNS: [&str; 6] = ["span_name", "start_datetime", "end_datetime", "during_time(ms)", "hostname", "pid"];

/// The span names kept by default.
pub const DEFAULT_SPANS: [&str; 3] = ["forward", "BatchSchedule", "batchFrameworkProcessing"];

/// A file name for a span name (path separators and odd characters replaced by `_`).
pub fn file_name(span: &str) -> String {
    let s: String = span.chars().map(|c| if c.is_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let s = if s.starts_with('.') { format!("_{s}") } else { s };
    format!("{s}.csv")
}

/// Write one file per span name present. Returns the files written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<Vec<String>> {
    let mut by: BTreeMap<&str, Vec<&SpanRow>> = BTreeMap::new();
    for s in &m.spans {
        by.entry(&*s.name).or_default().push(s);
    }
    if by.is_empty() {
        return Ok(Vec::new());
    }
    let sub = dir.join("span_info");
    crate::parse::output::create_dir(&sub)?;
    let mut out = Vec::new();
    for (name, rows) in by {
        let f = file_name(name);
        let mut c = Csv::create(&sub.join(&f), &COLUMNS)?;
        let mut df = time::DateFmt::default();
        for s in rows {
            let p = &m.procs[s.proc];
            c.cell(&s.name);
            c.cell_raw(|o| df.write(o, s.start, p.offset_s));
            c.cell_raw(|o| df.write(o, s.end, p.offset_s));
            c.cell_raw(|o| ms3_into(o, s.end - s.start));
            c.cell(&p.hostname);
            c.cell_raw(|o| o.extend_from_slice(itoa::Buffer::new().format(p.pid).as_bytes()));
            c.end()?;
        }
        c.finish()?;
        out.push(format!("span_info/{f}"));
    }
    Ok(out)
}
