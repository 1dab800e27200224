//! Request flows (the `s`/`t`/`f` events of chrome_tracing.json and the `flow` rows of
//! profiler.db: one point per request id per sliced record) without the points in memory.
//!
//! While reading, each part appends its points to a spill file and keeps, per request id, only
//! a count and its first and last point. The model merges the sums per mapped request id
//! ([`Flows::build`]); the exporters stream the spill files back ([`Flows::for_each`]) and give
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

use rustc_hash::FxBuildHasher;

use super::partial::FlowPt;
use super::rid::RidMap;

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

/// The flow points of one part, being written.
pub struct FlowWriter {
    w: BufWriter<File>,
    path: PathBuf,
    pid: u64,
    ids: hashbrown::HashMap<Box<str>, u32, FxBuildHasher>,
    sums: Vec<Sum<(i64, u32)>>,
}

impl FlowWriter {
    /// Create the spill file `path` for a part of the process drawn as trace pid `pid`.
    pub fn create(path: &Path, pid: u64) -> std::io::Result<FlowWriter> {
        let f = crate::parse::output::create_file(path)?;
        Ok(FlowWriter { w: BufWriter::with_capacity(1 << 20, f), path: path.to_path_buf(), pid, ids: Default::default(), sums: Vec::new() })
    }

    /// Record a point of request `rid` at `ts` on trace thread `tid`.
    pub fn point(&mut self, rid: &str, ts: i64, tid: u32) -> std::io::Result<()> {
        let i = match self.ids.get(rid) {
            Some(&i) => {
                self.sums[i as usize].merge(&Sum::one((ts, tid)));
                i
            }
            None => {
                let i = self.sums.len() as u32;
                self.ids.insert(Box::from(rid), i);
                self.sums.push(Sum::one((ts, tid)));
                i
            }
        };
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&i.to_le_bytes());
        b[4..8].copy_from_slice(&tid.to_le_bytes());
        b[8..].copy_from_slice(&ts.to_le_bytes());
        self.w.write_all(&b)
    }

    /// Flush and hand over the part's ids and sums.
    pub fn finish(mut self) -> std::io::Result<FlowPart> {
        self.w.flush()?;
        let mut rids: Vec<Box<str>> = vec![Box::from(""); self.sums.len()];
        for (k, i) in self.ids {
            rids[i as usize] = k;
        }
        Ok(FlowPart { path: self.path, pid: self.pid, rids, sums: self.sums })
    }
}

/// The flow points of one part, written: the spill file and, by part-local index, the raw
/// request ids and their sums.
pub struct FlowPart {
    path: PathBuf,
    pid: u64,
    rids: Vec<Box<str>>,
    sums: Vec<Sum<(i64, u32)>>,
}

impl FlowPart {
    /// The spill file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The flows of the model: per mapped request id its merged sum, and per part the spill file
/// and the index of each part-local id in the merged table.
#[derive(Default)]
pub struct Flows {
    rids: Vec<String>,
    sums: Vec<Sum<(i64, u64, u32)>>,
    parts: Vec<(PathBuf, u64, Vec<u32>)>,
}

impl Flows {
    /// Merge the parts' sums by API request id (through `map`); `parts` in reading order.
    pub fn build(parts: Vec<FlowPart>, map: &RidMap) -> Flows {
        let mut idx: hashbrown::HashMap<String, u32, FxBuildHasher> = Default::default();
        let mut sums: Vec<Sum<(i64, u64, u32)>> = Vec::new();
        let mut out_parts = Vec::with_capacity(parts.len());
        for part in parts {
            let mut tr = Vec::with_capacity(part.rids.len());
            for (rid, s) in part.rids.iter().zip(&part.sums) {
                let (m, s) = (map.resolve(rid), &s.map(|(ts, tid)| (ts, part.pid, tid)));
                let g = match idx.get(m) {
                    Some(&g) => {
                        sums[g as usize].merge(s);
                        g
                    }
                    None => {
                        let g = sums.len() as u32;
                        idx.insert(m.to_string(), g);
                        sums.push(*s);
                        g
                    }
                };
                tr.push(g);
            }
            out_parts.push((part.path, part.pid, tr));
        }
        let mut rids = vec![String::new(); sums.len()];
        for (k, g) in idx {
            rids[g as usize] = k;
        }
        Flows { rids, sums, parts: out_parts }
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
                f(&self.rids[g], p, ph)?;
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
            let mut parts = Vec::new();
            // Every point in reading order: (mapped rid, point).
            let mut all: Vec<(String, FlowPt)> = Vec::new();
            for part in 0..3u64 {
                let mut w = FlowWriter::create(&dir.path().join(format!("{round}.{part}")), 100 + part % 2).unwrap();
                for _ in 0..rnd(60) {
                    let r = rnd(6);
                    // Engine-side ids map to their API id.
                    let raw = if rnd(2) == 0 { format!("r{r}") } else { format!("r{r}-0123abcd") };
                    let (ts, tid) = (rnd(8) as i64, rnd(2) as u32);
                    w.point(&raw, ts, tid).unwrap();
                    all.push((format!("r{r}"), FlowPt { ts, pid: 100 + part % 2, tid }));
                }
                parts.push(w.finish().unwrap());
            }
            let flows = Flows::build(parts, &map);
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
