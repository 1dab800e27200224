//! Forward passes (`forward` spans of the worker), with bubbles and inherited batch info.

use std::collections::HashMap;

use super::batch::BatchRow;
use super::event::Event;
use super::ns::Ns;
use super::opt_f64::OptF64;

/// One forward.csv row.
#[derive(Clone, Debug)]
pub struct FwdRow {
    /// Process index.
    pub proc: usize,
    /// Start, epoch ns.
    pub start: i64,
    /// End, epoch ns.
    pub end: i64,
    /// [`rid_key`] of its rids (matches the batch rows with the same request list).
    pub rid_key: u64,
    /// `batch_size` (own attribute, else inherited).
    pub batch_size: OptF64,
    /// `batch_type` (own attribute, else inherited).
    pub batch_type: Option<std::borrow::Cow<'static, str>>,
    /// `dp_rank` attribute.
    pub dp_rank: Option<Box<str>>,
    /// 1-based counter per process (set by [`finish`]).
    pub iter: u64,
    /// Start − earliest start on the same host, ns (set by [`finish`]).
    pub relative: i64,
    /// Next start − this end on the same process, ns (set by [`finish`]).
    pub bubble: Option<Ns>,
}

impl FwdRow {
    /// From a `forward` span.
    pub fn from_event(ev: &Event<'_>, proc: usize) -> FwdRow {
        FwdRow {
            proc,
            start: ev.start,
            end: ev.end,
            rid_key: rid_key(ev.rids.entries.iter().map(|e| e.rid.as_str())),
            batch_size: ev.num("batch_size").into(),
            batch_type: ev.str("batch_type").map(super::batch::normalise_type),
            dp_rank: ev.attrs.get("dp_rank").map(|v| v.as_str().map(Box::from).unwrap_or_else(|| v.to_string().into_boxed_str())),
            iter: 0,
            relative: 0,
            bubble: None,
        }
    }
}

/// A 64-bit key of a request list: the deterministic `FxHasher` of the ids joined by `,`, so
/// forward rows find their batch rows without keeping the joined text of every row.
pub fn rid_key<'a>(rids: impl Iterator<Item = &'a str>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    for (i, r) in rids.enumerate() {
        if i > 0 {
            h.write(b",");
        }
        h.write(r.as_bytes());
    }
    h.finish()
}

/// Sort, number, compute bubbles and relative starts (`host_of(proc)` gives the host index),
/// and inherit batch size/type from the latest batch row with the same rid string.
pub fn finish(mut rows: Vec<FwdRow>, batches: &[BatchRow], host_of: impl Fn(usize) -> usize) -> Vec<FwdRow> {
    rows.sort_by(|a, b| (a.start, a.proc).cmp(&(b.start, b.proc)));
    // (request-list key, start, batch index), sorted: a flat index instead of a map of vectors
    // (24 bytes per batch row), built only when some row inherits from its batch.
    let mut by_rid: Vec<(u64, i64, u32)> = Vec::new();
    if rows.iter().any(|r| r.batch_size.is_none() || r.batch_type.is_none()) {
        by_rid.reserve_exact(batches.len());
        by_rid.extend(batches.iter().enumerate().map(|(i, b)| (b.rid_key, b.start, i as u32)));
        by_rid.sort_unstable();
    }
    let mut host_min: HashMap<usize, i64> = HashMap::new();
    for r in &rows {
        let h = host_of(r.proc);
        let m = host_min.entry(h).or_insert(r.start);
        *m = (*m).min(r.start);
    }
    let mut counters: HashMap<usize, u64> = HashMap::new();
    let mut last: HashMap<usize, usize> = HashMap::new();
    for i in 0..rows.len() {
        let p = rows[i].proc;
        let c = counters.entry(p).or_default();
        *c += 1;
        rows[i].iter = *c;
        rows[i].relative = rows[i].start - host_min[&host_of(p)];
        if let Some(j) = last.insert(p, i) {
            rows[j].bubble = Some(Ns::new(rows[i].start - rows[j].end));
        }
        if rows[i].batch_size.is_none() || rows[i].batch_type.is_none() {
            // The latest batch row with the same request list starting at or before this pass.
            let (key, start) = (rows[i].rid_key, rows[i].start);
            let k = by_rid.partition_point(|x| (x.0, x.1) <= (key, start));
            if k > 0 && by_rid[k - 1].0 == key {
                let b = &batches[by_rid[k - 1].2 as usize];
                if rows[i].batch_size.is_none() {
                    rows[i].batch_size = OptF64::new(Some(b.batch_size()));
                }
                if rows[i].batch_type.is_none() && !b.batch_type().is_empty() {
                    rows[i].batch_type = Some(b.batch_type_cow());
                }
            }
        }
    }
    rows
}
