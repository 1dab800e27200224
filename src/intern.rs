//! Strings → small ids, once per process. Ids start at 1 (0 means "none") and stay valid in a
//! forked child, so callers may cache them. Definitions reach the meta file before any record
//! that uses them can be written.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// The intern table.
#[derive(Default)]
pub struct Interner {
    ids: HashMap<Arc<[u8]>, u32>,
    list: Vec<Arc<[u8]>>,
}

/// The process-wide table (kept across fork; the fork handlers hold its lock across `fork`).
pub static TABLE: Mutex<Option<Interner>> = Mutex::new(None);

/// Longest string that can be interned.
pub const MAX_LEN: usize = 4096;

/// Intern `s`; returns its id and whether it is new. `None` when `s` is too long or the table
/// is full.
pub fn intern(s: &[u8]) -> Option<(u32, bool)> {
    if s.len() > MAX_LEN {
        return None;
    }
    let mut g = TABLE.lock();
    let t = g.get_or_insert_with(Interner::default);
    if let Some(&id) = t.ids.get(s) {
        return Some((id, false));
    }
    if t.list.len() >= u32::MAX as usize - 1 {
        return None;
    }
    let a: Arc<[u8]> = Arc::from(s);
    t.list.push(a.clone());
    let id = t.list.len() as u32;
    t.ids.insert(a, id);
    Some((id, true))
}

/// The string of `id`.
pub fn resolve(id: u32) -> Option<Arc<[u8]>> {
    let g = TABLE.lock();
    g.as_ref()?.list.get((id as usize).checked_sub(1)?).cloned()
}

/// Number of interned strings.
pub fn len() -> usize {
    TABLE.lock().as_ref().map_or(0, |t| t.list.len())
}

/// Strings with ids in `from..` (1-based), in id order.
pub fn since(from: u32) -> Vec<(u32, Arc<[u8]>)> {
    let g = TABLE.lock();
    let Some(t) = g.as_ref() else { return Vec::new() };
    let start = (from.max(1) - 1) as usize;
    t.list.iter().enumerate().skip(start).map(|(i, s)| (i as u32 + 1, s.clone())).collect()
}
