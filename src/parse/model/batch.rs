//! Batches: one row per schedule / execute / spec-decode span, with P/D composition, KV columns
//! matched by time and spec-decode acceptance.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value as J};

use super::batch_name::BatchName;
use super::event::Event;
use super::kv::KvRow;
use super::rid::RidEntry;

/// Names that make batch rows (the schedule name is chosen per parse: `BatchSchedule` if present,
/// else `batchFrameworkProcessing`, else `Schedule`).
pub const SCHEDULE_NAMES: [&str; 3] = ["BatchSchedule", "batchFrameworkProcessing", "Schedule"];
/// Execute-side batch rows.
pub const EXEC_NAMES: [&str; 4] = ["modelExec", "modelRunnerExec", "Execute", "specDecoding"];

/// KV-cache values copied onto a schedule row.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KvCols {
    /// `total_blocks`.
    pub total: f64,
    /// `used_blocks`.
    pub used: f64,
    /// `free_blocks`.
    pub free: f64,
    /// `blocks_allocated`.
    pub allocated: f64,
    /// `blocks_freed`.
    pub freed: f64,
    /// `kvcache_usage_rate` (0–1).
    pub rate: f64,
}

/// The `batch_type` spellings a row stores as a code ([`BatchRow::ty`]).
pub const TYPES: [&str; 4] = ["", "Prefill", "Decode", "Prefill, Decode"];

/// The rare parts of a batch row, boxed so that a row without them pays one pointer.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// A `batch_type` that is none of [`TYPES`].
    pub other_type: Option<String>,
    /// `spec_decode_accepted_by_req` of a `modelRunnerExec` row.
    pub accepted_by_req: Option<Map<String, J>>,
}

/// One batch.csv row.
#[derive(Clone, Debug)]
pub struct BatchRow {
    /// Record name.
    pub name: BatchName,
    /// Process index.
    pub proc: u32,
    /// Start, epoch ns.
    pub start: i64,
    /// End, epoch ns.
    pub end: i64,
    /// The `rid` attribute was a list of dicts (else a list of ids).
    pub dicts: bool,
    /// The parsed requests (`res_list` is rebuilt from them at output). Empty once spilled: read
    /// them with [`super::spill::entries_of`].
    pub entries: std::sync::Arc<Vec<RidEntry>>,
    /// Where the requests were spilled while reading (see [`super::spill`]).
    pub spilled: Option<super::spill::SpillRef>,
    /// Number of requests.
    pub size: u32,
    /// [`super::forward::rid_key`] of the request ids.
    pub rid_key: u64,
    /// `batch_type` (attribute, else from `iter`s; read it with [`BatchRow::batch_type`]): its
    /// index in [`TYPES`], or `TYPES.len()` when the text is in [`Extra::other_type`].
    pub ty: u8,
    /// The KV row whose columns this row shows (schedule rows only): its index in the model's
    /// time-sorted KV rows (read the columns with [`BatchRow::kv_cols`]).
    pub kv: Option<u32>,
    /// The rare parts, when the row has any.
    pub extra: Option<Box<Extra>>,
    /// Prefill / decode request counts.
    pub pd_size: (u32, u32),
    /// Prefill / decode scheduled tokens.
    pub pd_tokens: (f64, f64),
}

/// Normalise a batch type: both mixed spellings become `Prefill, Decode`.
pub fn normalise_type(s: &str) -> Cow<'static, str> {
    let parts: Vec<&str> = s.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let has = |w: &str| parts.iter().any(|p| p.eq_ignore_ascii_case(w));
    match (has("Prefill"), has("Decode")) {
        (true, true) => Cow::Borrowed("Prefill, Decode"),
        (true, false) => Cow::Borrowed("Prefill"),
        (false, true) => Cow::Borrowed("Decode"),
        _ => Cow::Owned(s.to_string()),
    }
}

impl BatchRow {
    /// The batch type of a batch span: the `batch_type` attribute, else from the `iter`s.
    pub fn type_of(ev: &Event<'_>) -> Cow<'static, str> {
        match ev.str("batch_type") {
            Some(t) if !t.is_empty() => normalise_type(t),
            _ => {
                let iters: Vec<i64> = ev.rids.entries.iter().filter_map(|e| e.iter).collect();
                let (z, nz) = (iters.iter().any(|&i| i == 0), iters.iter().any(|&i| i > 0));
                Cow::Borrowed(match (z, nz) {
                    (true, true) => "Prefill, Decode",
                    (true, false) => "Prefill",
                    (false, true) => "Decode",
                    _ => "",
                })
            }
        }
    }

    /// From a batch span named `name` (its [`batch_name`]; its rid entries are moved out of
    /// `ev`). When they equal `share`'s (a `modelExec` after its schedule row carries the same
    /// list), that list is shared.
    pub fn from_event(
        ev: &mut Event<'_>,
        name: BatchName,
        proc: usize,
        batch_type: Cow<'static, str>,
        share: Option<&std::sync::Arc<Vec<RidEntry>>>,
    ) -> BatchRow {
        let mut own = std::mem::take(&mut ev.rids.entries);
        let entries = match share {
            Some(a) if std::sync::Arc::ptr_eq(a, &own) || **a == *own => a.clone(),
            _ => {
                if let Some(v) = std::sync::Arc::get_mut(&mut own) {
                    v.shrink_to_fit();
                }
                own
            }
        };
        let size = entries.len() as u32;
        let rid_key = super::forward::rid_key(entries.iter().map(|e| e.rid.as_str()));
        let ty = TYPES.iter().position(|t| *t == batch_type).unwrap_or(TYPES.len());
        let other_type = (ty == TYPES.len()).then(|| batch_type.into_owned());
        let accepted_by_req = ev.attrs.get("spec_decode_accepted_by_req").and_then(|v| v.as_object()).cloned();
        let extra = (other_type.is_some() || accepted_by_req.is_some()).then(|| Box::new(Extra { other_type, accepted_by_req }));
        let mut r = BatchRow {
            spilled: None,
            size,
            rid_key,
            name,
            proc: proc as u32,
            start: ev.start,
            end: ev.end,
            dicts: ev.rids.dicts,
            entries,
            ty: ty as u8,
            kv: None,
            extra,
            pd_size: (0, 0),
            pd_tokens: (0.0, 0.0),
        };
        r.compute_pd();
        r
    }

    /// Prefill/decode sizes and tokens from the dicts.
    pub fn compute_pd(&mut self) {
        let (mut ps, mut ds, mut pt, mut dt) = (0, 0, 0.0, 0.0);
        for e in self.entries.iter() {
            if e.iter.is_none() && e.typ.is_none() {
                continue;
            }
            let t = e.scheduled.unwrap_or(0.0);
            if e.is_prefill() {
                ps += 1;
                pt += t;
            } else {
                ds += 1;
                dt += t;
            }
        }
        self.pd_size = (ps, ds);
        self.pd_tokens = (pt, dt);
    }

    /// The KV columns, from `kv` (the model's KV rows, which [`finish`] was given).
    pub fn kv_cols(&self, kv: &[KvRow]) -> Option<KvCols> {
        self.kv.and_then(|i| kv.get(i as usize)).map(KvRow::cols)
    }

    /// `batch_type`.
    pub fn batch_type(&self) -> &str {
        match TYPES.get(self.ty as usize) {
            Some(t) => t,
            None => self.extra.as_ref().and_then(|x| x.other_type.as_deref()).unwrap_or_default(),
        }
    }

    /// `batch_type`, borrowed when it is one of [`TYPES`].
    pub fn batch_type_cow(&self) -> Cow<'static, str> {
        match TYPES.get(self.ty as usize) {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(self.batch_type().to_string()),
        }
    }

    /// `spec_decode_accepted_by_req`, when the row had it.
    pub fn accepted_by_req(&self) -> Option<&Map<String, J>> {
        self.extra.as_ref().and_then(|x| x.accepted_by_req.as_ref())
    }

    /// `batch_size`: the number of requests.
    pub fn batch_size(&self) -> f64 {
        self.size as f64
    }

    /// Whether the request list may be spilled (spec-decode rows keep theirs: [`finish`] and
    /// the spec-decode outputs use them).
    pub fn spillable(&self) -> bool {
        self.name != "specDecoding" && self.name != "modelRunnerExec"
    }

    /// `during_time`, ns.
    pub fn dur(&self) -> i64 {
        self.end - self.start
    }

    /// Spec-decode totals (Σ spec, Σ accepted) and the per-position ratios.
    pub fn spec_ratios(&self) -> (Option<f64>, Option<J>) {
        let spec: Vec<f64> = self.entries.iter().map(spec_tokens).collect();
        let acc: Vec<f64> = self.entries.iter().map(|e| e.spec_accepted.unwrap_or(0.0)).collect();
        let (s, a): (f64, f64) = (spec.iter().sum(), acc.iter().sum());
        let ratio = (s > 0.0).then(|| round4(a / s));
        let max_spec = spec.iter().cloned().fold(0.0, f64::max) as usize;
        let mut per = Map::new();
        for p in 0..max_spec {
            let den = spec.iter().filter(|&&x| x >= (p + 1) as f64).count();
            let num = acc.iter().filter(|&&x| x >= (p + 1) as f64).count();
            if den > 0 {
                per.insert(p.to_string(), J::from(round4(num as f64 / den as f64)));
            }
        }
        (ratio, Some(J::Object(per)))
    }
}

/// `spec_tokens` of a request: `num_spec_output_tokens`, else `num_scheduled_tokens`, else 0.
pub fn spec_tokens(e: &RidEntry) -> f64 {
    e.spec_out.or(e.scheduled).unwrap_or(0.0)
}

/// Round to 4 decimals.
pub fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// Which schedule name this parse uses, from the names present.
pub fn schedule_name(rows: &[BatchRow]) -> &'static str {
    for n in SCHEDULE_NAMES {
        if rows.iter().any(|r| r.name == n) {
            return n;
        }
    }
    SCHEDULE_NAMES[1]
}

/// Finish the batch rows: keep the schedule name chosen and the execute names, sort by time,
/// match KV rows onto schedule rows, and fill spec-decode rows. `kv` must be sorted by time.
pub fn finish(mut rows: Vec<BatchRow>, kv: &[KvRow]) -> (Vec<BatchRow>, &'static str) {
    let sched = schedule_name(&rows);
    rows.retain(|r| r.name == sched || r.name.is_exec());
    rows.sort_by(|a, b| (a.start, a.end, a.proc).cmp(&(b.start, b.end, b.proc)));
    // KV status rows by process.
    let mut by_proc: BTreeMap<usize, Vec<(u32, &KvRow)>> = BTreeMap::new();
    for (i, k) in kv.iter().enumerate().filter(|(_, k)| &*k.name == "KVCacheStatus") {
        by_proc.entry(k.proc).or_default().push((i as u32, k));
    }
    for r in rows.iter_mut().filter(|r| r.name == sched) {
        let Some(ks) = by_proc.get(&(r.proc as usize)) else { continue };
        let i = ks.partition_point(|k| k.1.ts < r.start);
        let k = ks.get(i).or_else(|| i.checked_sub(1).and_then(|j| ks.get(j)));
        if let Some(k) = k {
            r.kv = Some(k.0);
        }
    }
    // Spec decoding: P/D sizes from the latest modelExec ending at or before, accepted counts
    // from the first modelRunnerExec starting at or after (same process).
    let n = rows.len();
    for i in 0..n {
        if rows[i].name != "specDecoding" {
            continue;
        }
        let (proc, end) = (rows[i].proc, rows[i].end);
        let exec = rows.iter().filter(|r| r.proc == proc && r.name == "modelExec" && r.end <= end).max_by_key(|r| r.end).map(|r| (r.pd_size, r.pd_tokens));
        let runner = rows
            .iter()
            .filter(|r| r.proc == proc && r.name == "modelRunnerExec" && r.start >= end)
            .min_by_key(|r| r.start)
            .and_then(|r| r.accepted_by_req().cloned());
        let row = &mut rows[i];
        if let Some((s, t)) = exec {
            row.pd_size = s;
            row.pd_tokens = t;
        }
        if let Some(acc) = runner {
            for e in std::sync::Arc::make_mut(&mut row.entries).iter_mut() {
                if let Some(v) = acc.get(&e.rid).and_then(|v| super::event::num(Some(v))) {
                    e.spec_accepted = Some(v);
                }
            }
        }
    }
    (rows, sched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_stays_compact() {
        // Two rows per engine step: the size is most of the batch rows' memory.
        assert!(std::mem::size_of::<BatchRow>() <= 104, "{}", std::mem::size_of::<BatchRow>());
    }

    #[test]
    fn type_codes_round_trip() {
        for t in TYPES.iter().copied().chain(["Foo"]) {
            let ty = TYPES.iter().position(|x| *x == t).unwrap_or(TYPES.len());
            let extra = (ty == TYPES.len()).then(|| Box::new(Extra { other_type: Some(t.to_string()), accepted_by_req: None }));
            let r = BatchRow {
                name: super::super::batch_name::BatchName::of("modelExec").unwrap(),
                proc: 0,
                start: 0,
                end: 0,
                dicts: false,
                entries: Default::default(),
                spilled: None,
                size: 0,
                rid_key: 0,
                ty: ty as u8,
                kv: None,
                extra,
                pd_size: (0, 0),
                pd_tokens: (0.0, 0.0),
            };
            assert_eq!(r.batch_type(), t);
            assert_eq!(r.batch_type_cow(), t);
        }
    }
}
