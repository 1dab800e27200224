//! A request's iteration ends ([`IterEnd`], one per iteration, for TPOT and the decode speed),
//! kept compactly: a request runs for many iterations and every engine-side accumulator holds
//! its list until export. All entries but the last are stored as variable-length deltas to the
//! entry before (≈ 5 bytes instead of 16); the last stays plain, as a new end of the same
//! iteration may replace it.

/// The end of one iteration of a request, in 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IterEnd {
    /// `iter` · 2 + 1 when from an execute row.
    key: i64,
    /// End, epoch ns.
    pub end: i64,
}

impl IterEnd {
    /// Iteration `iter` (kept within ±2⁶², far beyond any real count) ended at `end`; `exec`:
    /// the end is an execute row's (`modelExec`), schedule rows are only a fallback.
    pub fn new(iter: i64, end: i64, exec: bool) -> IterEnd {
        IterEnd { key: iter.clamp(-(1 << 62), (1 << 62) - 1) * 2 + exec as i64, end }
    }

    /// `iter`.
    pub fn iter(&self) -> i64 {
        self.key >> 1
    }

    /// From an execute row.
    pub fn exec(&self) -> bool {
        self.key & 1 == 1
    }
}

/// A list of [`IterEnd`]s in insertion order.
#[derive(Clone, Debug, Default)]
pub struct IterEnds {
    /// Every entry but the last, each as the zigzag varints of its key and end minus the
    /// previous entry's.
    packed: Vec<u8>,
    /// The entry before `last` (what the next packed entry is a delta to).
    prev: IterEnd,
    /// The last entry, if any.
    last: Option<IterEnd>,
}

impl IterEnds {
    /// Append `x` without folding.
    pub fn push(&mut self, x: IterEnd) {
        if let Some(l) = self.last.replace(x) {
            let mut b = [0u8; 20];
            let n = put(&mut b, 0, l.key.wrapping_sub(self.prev.key));
            let n = put(&mut b, n, l.end.wrapping_sub(self.prev.end));
            self.packed.extend_from_slice(&b[..n]);
            self.prev = l;
        }
    }

    /// The last entry, to replace in place.
    pub fn last_mut(&mut self) -> Option<&mut IterEnd> {
        self.last.as_mut()
    }

    /// Append all of `o`'s entries, in order, without folding.
    pub fn extend(&mut self, o: &IterEnds) {
        for x in o.iter() {
            self.push(x);
        }
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = IterEnd> + '_ {
        let mut p = 0;
        let mut cur = IterEnd::default();
        std::iter::from_fn(move || {
            if p < self.packed.len() {
                cur.key = cur.key.wrapping_add(get(&self.packed, &mut p));
                cur.end = cur.end.wrapping_add(get(&self.packed, &mut p));
                Some(cur)
            } else {
                None
            }
        })
        .chain(self.last)
    }
}

/// Write `v` zigzag-varint encoded at `out[at..]` (at most 10 bytes); returns the end.
fn put(out: &mut [u8; 20], mut at: usize, v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out[at] = z as u8 | 0x80;
        z >>= 7;
        at += 1;
    }
    out[at] = z as u8;
    at + 1
}

fn get(b: &[u8], p: &mut usize) -> i64 {
    let (mut z, mut shift) = (0u64, 0);
    while let Some(&c) = b.get(*p) {
        *p += 1;
        z |= ((c & 0x7f) as u64) << shift;
        if c < 0x80 {
            break;
        }
        shift += 7;
    }
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iter_end_packs_iter_and_exec() {
        assert_eq!(std::mem::size_of::<IterEnd>(), 16);
        for (i, x) in [(0, false), (0, true), (7, true), (-3, false), (-3, true), (1 << 40, true)] {
            let e = IterEnd::new(i, 5, x);
            assert_eq!((e.iter(), e.exec(), e.end), (i, x, 5));
        }
    }

    #[test]
    fn round_trip() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut want = Vec::new();
        let mut l = IterEnds::default();
        for k in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let e = match k % 4 {
                0 => IterEnd::new(x as i64 >> 2, x.rotate_left(7) as i64, x & 1 == 1),
                1 => IterEnd::new(-(1 << 62), i64::MIN, false),
                _ => IterEnd::new(k, 1_764_000_000_000_000_000 + k * 10_000_000, k % 3 == 0),
            };
            l.push(e);
            want.push(e);
            if k % 5 == 0 {
                let n = IterEnd::new(k, -(k as i64), true);
                *l.last_mut().unwrap() = n;
                *want.last_mut().unwrap() = n;
            }
            assert_eq!(l.iter().last(), want.last().copied());
        }
        assert_eq!(l.iter().collect::<Vec<_>>(), want);
        let mut m = IterEnds::default();
        m.push(IterEnd::new(1, 2, true));
        m.extend(&l);
        assert_eq!(m.iter().count(), want.len() + 1);
        assert!(m.iter().skip(1).eq(want.iter().copied()));
        assert_eq!(IterEnds::default().iter().count(), 0);
    }
}
