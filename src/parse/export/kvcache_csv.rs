//! `kvcache.csv`: KV-cache status rows (vLLM format).

use std::path::Path;

use super::csv::{num_into, opt, Csv};
use crate::parse::build::Model;
use crate::parse::model::kv::KvRow;
use crate::parse::time;

/// Column names, in order.
pub const COLUMNS: [&str; 8] = ["name", "start_time", "total_blocks", "used_blocks", "free_blocks", "blocks_allocated", "blocks_freed", "kvcache_usage_rate"];

/// The cells of one row.
pub fn cells(m: &Model, k: &KvRow) -> [String; 8] {
    [
        k.name.to_string(),
        time::datetime(k.ts, m.procs[k.proc].offset_s),
        opt(k.total.get()),
        opt(k.used.get()),
        opt(k.free.get()),
        opt(k.allocated.get()),
        opt(k.freed.get()),
        opt(k.rate.get()),
    ]
}

/// Write `kvcache.csv`. Returns whether it was written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<bool> {
    if m.kv.is_empty() {
        return Ok(false);
    }
    let mut c = Csv::create(&dir.join("kvcache.csv"), &COLUMNS)?;
    let mut df = time::DateFmt::default();
    for k in &m.kv {
        c.cell(&k.name);
        c.cell_raw(|o| df.write(o, k.ts, m.procs[k.proc].offset_s));
        for x in [k.total, k.used, k.free, k.allocated, k.freed, k.rate] {
            c.cell_raw(|o| {
                if let Some(x) = x.get() {
                    num_into(o, x)
                }
            });
        }
        c.end()?;
    }
    c.finish()?;
    Ok(true)
}
