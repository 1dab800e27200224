//! Request flows (the `s`/`t`/`f` events of chrome_tracing.json and the `flow` rows of
//! profiler.db: one point per request id per sliced record) without the points in memory.
//!
//! While reading, each part appends its points to a spill file and keeps, per request id, only
//! a count and its first and last point, indexed by a slot in the id's accumulator. Merging the
//! parts ([`super::partial::Partial::merge`]) merges the sums per mapped request id
//! ([`Flows::add_part`]); the exporters stream the spill files back ([`Flows::for_each`]) and give
//! each point its phase from the merged sums: the first point of a request is `s`, its last `f`,
//! the others `t` (a request with one point has no flow). Memory is proportional to the number
//! of request ids, not to the number of points (about 70 per request on a decode-heavy service).
//!
//! A spill record is 16 bytes: `u32` part-local id index, `u32` trace tid, `i64` ts (LE); the
//! part's trace pid is the same for all its points. Points come back part by part in the order
//! they were read, not sorted by time (trace viewers sort events by `ts`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::partial::FlowPt;

/// The sort key of a point (the order the phases follow).
fn key(p: &FlowPt) -> (i64, u64, u32) {
    (p.ts, p.pid, p.tid)
}

/// What the phases of one request's points need, by sort key `K`: how many points there are,
/// the first and the last key, and how many points share the last key (the `f` goes to the last
/// of them in reading order). Within a part the key is `(ts, tid)` (the pid is the part's), in
/// the model `(ts, pid, tid)`.
#[derive(Clone, Copy, Debug)]
struct Sum<K> {
    first: K,
    last: K,
    n: u32,
    n_last: u32,
}

impl<K: Ord + Copy> Sum<K> {
    fn one(k: K) -> Sum<K> {
        Sum { first: k, last: k, n: 1, n_last: 1 }
    }

    /// Fold in the sum of points read after this one's (ties keep the earlier first point).
    fn merge(&mut self, o: &Sum<K>) {
        self.n = self.n.saturating_add(o.n);
        if o.first < self.first {
            self.first = o.first;
        }
        match o.last.cmp(&self.last) {
            std::cmp::Ordering::Greater => {
                self.last = o.last;
                self.n_last = o.n_last;
            }
            std::cmp::Ordering::Equal => self.n_last = self.n_last.saturating_add(o.n_last),
            std::cmp::Ordering::Less => {}
        }
    }

    /// The same sum under another key.
    fn map<L>(&self, f: impl Fn(K) -> L) -> Sum<L> {
        Sum { first: f(self.first), last: f(self.last), n: self.n, n_last: self.n_last }
    }
}

/// The flow points of one part, being written. A request id's part-local flow index lives in
/// its accumulator in the part's request table ([`super::request::ReqAcc::flow`]), so the ids
/// are stored once per part.
pub struct FlowWriter {
    w: BufWriter<File>,
    path: PathBuf,
    pid: u64,
    sums: Vec<Sum<(i64, u32)>>,
}

impl FlowWriter {
    /// Create the spill file `path` for a part of the process drawn as trace pid `pid`.
    pub fn create(path: &Path, pid: u64) -> std::io::Result<FlowWriter> {
        let f = crate::parse::output::create_file(path)?;
        Ok(FlowWriter { w: BufWriter::with_capacity(1 << 20, f), path: path.to_path_buf(), pid, sums: Vec::new() })
    }

    /// Record a point at `ts` on trace thread `tid` of the request id whose flow slot (part-local
    /// index + 1; 0 before its first point) is `slot`.
    pub fn point(&mut self, slot: &mut u32, ts: i64, tid: u32) -> std::io::Result<()> {
        let i = match slot.checked_sub(1) {
            Some(i) => {
                self.sums[i as usize].merge(&Sum::one((ts, tid)));
                i
            }
            None => {
                let i = self.sums.len() as u32;
                self.sums.push(Sum::one((ts, tid)));
                *slot = i + 1;
                i
            }
        };
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&i.to_le_bytes());
        b[4..8].copy_from_slice(&tid.to_le_bytes());
        b[8..].copy_from_slice(&ts.to_le_bytes());
        self.w.write_all(&b)
    }

    /// Flush and hand over the part's sums.
    pub fn finish(mut self) -> std::io::Result<FlowPart> {
        self.w.flush()?;
        Ok(FlowPart { path: self.path, pid: self.pid, sums: self.sums })
    }
}

/// The flow points of one part, written: the spill file and the sums by part-local index.
pub struct FlowPart {
    path: PathBuf,
    pid: u64,
    sums: Vec<Sum<(i64, u32)>>,
}

impl FlowPart {
    /// The spill file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many request ids have points in this part (part-local indices are `0..len`).
    pub fn len(&self) -> usize {
        self.sums.len()
    }

    /// No points.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }
}

/// The flows of the model: per merged flow id (one per mapped request id with points) its sum
/// and name, and per part the spill file and the merged id of each part-local index.
#[derive(Default)]
pub struct Flows {
    names: Vec<Box<str>>,
    sums: Vec<Sum<(i64, u64, u32)>>,
    parts: Vec<(PathBuf, u64, Vec<u32>)>,
}

impl Flows {
    /// A new merged flow id (its slot value is the id + 1, as in a part).
    pub fn new_id(&mut self) -> u32 {
        self.sums.push(Sum { first: (0, 0, 0), last: (0, 0, 0), n: 0, n_last: 0 });
        self.sums.len() as u32
    }

    /// Add a part read after those added before; `slots[i]` is the merged slot (id + 1) of its
    /// part-local index `i`.
    pub fn add_part(&mut self, part: FlowPart, slots: Vec<u32>) {
        for (s, &g) in part.sums.iter().zip(&slots) {
            let s = s.map(|(ts, tid)| (ts, part.pid, tid));
            let m = &mut self.sums[g as usize - 1];
            if m.n == 0 {
                *m = s;
            } else {
                m.merge(&s);
            }
        }
        let tr = slots.into_iter().map(|g| g - 1).collect();
        self.parts.push((part.path, part.pid, tr));
    }

    /// Name the merged ids: `names` yields (id slot, request id) for every slot handed out.
    pub fn set_names<'a>(&mut self, names: impl Iterator<Item = (u32, &'a str)>) {
        self.names = vec![Box::from(""); self.sums.len()];
        for (slot, name) in names {
            if let Some(n) = slot.checked_sub(1).and_then(|g| self.names.get_mut(g as usize)) {
                *n = Box::from(name);
            }
        }
    }

    /// Every point of every flow, part by part in reading order, as (API request id, point,
    /// phase `"s"`, `"t"` or `"f"`); `io` converts a failure reading the spill files.
    pub fn for_each<E>(&self, mut f: impl FnMut(&str, FlowPt, &'static str) -> Result<(), E>, io: impl Fn(std::io::Error) -> E) -> Result<(), E> {
        let mut started = vec![false; self.sums.len()];
        let mut left_last: Vec<u32> = self.sums.iter().map(|s| s.n_last).collect();
        let mut b = [0u8; 16];
        for (path, pid, tr) in &self.parts {
            let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(&io)?);
            loop {
                match r.read_exact(&mut b) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(io(e)),
                }
                let i = u32::from_le_bytes(b[..4].try_into().unwrap());
                let Some(&g) = tr.get(i as usize) else { continue };
                let g = g as usize;
                let s = &self.sums[g];
                if s.n < 2 {
                    continue;
                }
                let p = FlowPt { ts: i64::from_le_bytes(b[8..].try_into().unwrap()), pid: *pid, tid: u32::from_le_bytes(b[4..8].try_into().unwrap()) };
                let is_last = key(&p) == s.last;
                if is_last {
                    left_last[g] = left_last[g].saturating_sub(1);
                }
                let ph = if !started[g] && key(&p) == s.first {
                    started[g] = true;
                    "s"
                } else if is_last && left_last[g] == 0 {
                    "f"
                } else {
                    "t"
                };
                f(self.names.get(g).map_or("", |n| n), p, ph)?;
            }
        }
        Ok(())
    }

    /// Remove the spill files.
    pub fn remove(&self) {
        for (p, _, _) in &self.parts {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::model::partial::Partial;
    use crate::parse::model::rid::RidMap;

    /// The streamed phases equal those of the sorted points (the former in-memory rule): per
    /// request, points sorted by (ts, pid, tid) stably in reading order, first `s`, last `f`.
    #[test]
    fn phases_match_the_sorted_rule() {
        let dir = tempfile::tempdir().unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..40 {
            let api: Vec<String> = (0..6).map(|r| format!("r{r}")).collect();
            let map = RidMap::build(api.iter(), &[]);
            let mut merged = Partial::default();
            // Every point in reading order: (mapped rid, point).
            let mut all: Vec<(String, FlowPt)> = Vec::new();
            for part in 0..3u64 {
                let mut w = FlowWriter::create(&dir.path().join(format!("{round}.{part}")), 100 + part % 2).unwrap();
                let mut p = Partial::default();
                for _ in 0..rnd(60) {
                    let r = rnd(6);
                    // Engine-side ids map to their API id.
                    let raw = if rnd(2) == 0 { format!("r{r}") } else { format!("r{r}-0123abcd") };
                    let (ts, tid) = (rnd(8) as i64, rnd(2) as u32);
                    w.point(&mut p.requests.entry_ref(raw.as_str()).or_default().flow, ts, tid).unwrap();
                    all.push((format!("r{r}"), FlowPt { ts, pid: 100 + part % 2, tid }));
                }
                p.flow_part = Some(w.finish().unwrap());
                merged.merge(p, &map);
            }
            let mut flows = merged.flows;
            flows.set_names(merged.requests.iter().map(|(k, a)| (a.flow, k.as_str())));
            let mut got: Vec<(String, FlowPt, &str)> = Vec::new();
            flows
                .for_each(
                    |r, p, ph| {
                        got.push((r.to_string(), p, ph));
                        Ok::<(), std::io::Error>(())
                    },
                    |e| e,
                )
                .unwrap();
            // Expected: per rid, the stable sort of its points.
            for r in &api {
                let mut pts: Vec<(usize, FlowPt)> = all.iter().enumerate().filter(|(_, (k, _))| k == r).map(|(i, (_, p))| (i, *p)).collect();
                let mine: Vec<(FlowPt, &str)> = got.iter().filter(|(k, _, _)| k == r).map(|(_, p, ph)| (*p, *ph)).collect();
                if pts.len() < 2 {
                    assert!(mine.is_empty());
                    continue;
                }
                assert_eq!(mine.len(), pts.len());
                pts.sort_by_key(|(i, p)| (key(p), *i));
                // The streamed order is the reading order: phase of the k-th point read.
                let order: Vec<usize> = {
                    let mut o: Vec<usize> = (0..pts.len()).collect();
                    o.sort_by_key(|&k| pts[k].0);
                    o
                };
                for (read_k, &sorted_k) in order.iter().enumerate() {
                    let want = if sorted_k == 0 {
                        "s"
                    } else if sorted_k == pts.len() - 1 {
                        "f"
                    } else {
                        "t"
                    };
                    assert_eq!(mine[read_k].1, want, "round {round} rid {r}: {mine:?}");
                    assert_eq!(key(&mine[read_k].0), key(&pts[sorted_k].1));
                }
            }
            flows.remove();
        }
    }
}
