//! KV-cache rows (`KVCacheStatus`, `Free`, … of domain `Schedule.KVCache` / `KVCache`).

use super::batch::KvCols;
use super::event::Event;
use super::opt_f64::OptF64;

/// One kvcache.csv row; absent values are empty cells (144 bytes with `Option<f64>` fields,
/// 88 with [`OptF64`]).
#[derive(Clone, Debug)]
pub struct KvRow {
    /// Process index.
    pub proc: usize,
    /// Time, epoch ns.
    pub ts: i64,
    /// Record name.
    pub name: std::sync::Arc<str>,
    /// `TotalBlocks=`.
    pub total: OptF64,
    /// `FreeBlocksAfter=`, else `FreeBlocks=`.
    pub free: OptF64,
    /// total − free, else `UsedBlocks=`.
    pub used: OptF64,
    /// Blocks allocated by this step.
    pub allocated: OptF64,
    /// Blocks freed by this step.
    pub freed: OptF64,
    /// Usage 0–1: `UsagePercent=` (÷100 when > 1), else used / total.
    pub rate: OptF64,
    /// `deviceBlock=` (the free-block count of `Free` events).
    pub device_block: OptF64,
}

/// Whether a record belongs in kvcache.csv.
pub fn is_kv(domain: &str, name: &str) -> bool {
    (domain == "Schedule.KVCache" || domain == "KVCache") && name != "CacheHitRate"
}

impl KvRow {
    /// From a KV record; `name` is the shared copy of its name.
    pub fn from_event(ev: &Event<'_>, proc: usize, name: std::sync::Arc<str>) -> KvRow {
        let total = ev.num("TotalBlocks=");
        let free = ev.num("FreeBlocksAfter=").or_else(|| ev.num("FreeBlocks="));
        let used = match (total, free) {
            (Some(t), Some(f)) => Some(t - f),
            _ => ev.num("UsedBlocks="),
        };
        let (allocated, freed) = match (ev.num("FreeBlocksBefore="), ev.num("FreeBlocksAfter=")) {
            (Some(b), Some(a)) => (Some((b - a).max(0.0)), Some((a - b).max(0.0))),
            _ => match ev.num("AllocatedBlocks=") {
                Some(x) => (Some(x.max(0.0)), Some((-x).max(0.0))),
                None => (None, None),
            },
        };
        let rate = ev.num("UsagePercent=").map(|u| if u > 1.0 { u / 100.0 } else { u }).or_else(|| match (used, total) {
            (Some(u), Some(t)) if t > 0.0 => Some(u / t),
            _ => None,
        });
        KvRow {
            proc,
            ts: ev.start,
            name,
            total: total.into(),
            free: free.into(),
            used: used.into(),
            allocated: allocated.into(),
            freed: freed.into(),
            rate: rate.into(),
            device_block: ev.num("deviceBlock=").into(),
        }
    }

    /// The columns copied onto a batch row (missing = 0).
    pub fn cols(&self) -> KvCols {
        KvCols {
            total: self.total.get().unwrap_or(0.0),
            used: self.used.get().unwrap_or(0.0),
            free: self.free.get().unwrap_or(0.0),
            allocated: self.allocated.get().unwrap_or(0.0),
            freed: self.freed.get().unwrap_or(0.0),
            rate: self.rate.get().unwrap_or(0.0),
        }
    }

    /// The free-block count for the trace's `Device Block` counter.
    pub fn device_block(&self) -> Option<f64> {
        self.free.get().or(self.device_block.get())
    }
}
