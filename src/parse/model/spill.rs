//! Batch request lists spilled to disk while reading. A batch row's list (16+ rid dicts, the
//! largest part of the model) is written to its part's spill file as soon as the row is made and
//! only a [`SpillRef`] stays in memory; the exporters read a list back when they write its row.
//!
//! A list is `u32 count`, then per entry: `u16 rid length`, the rid bytes, a `u8` mask of the
//! fields present (bit i = field i of [`RidEntry::fields`]) and each present field as `f64` LE
//! (`iter` and `type` as `i64` LE).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::rid::RidEntry;

/// Where a spilled list is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpillRef {
    /// The part (work item) that wrote it.
    pub part: u32,
    /// Byte offset in that part's file.
    pub off: u64,
    /// Byte length (never 0: a list starts with its count, so `Option<SpillRef>` needs no tag).
    pub len: std::num::NonZeroU32,
}

/// The spill file of one part, being written.
pub struct SpillWriter {
    w: BufWriter<File>,
    path: PathBuf,
    part: u32,
    off: u64,
    buf: Vec<u8>,
}

impl SpillWriter {
    /// Create the spill file `path` of part `part`.
    pub fn create(path: &Path, part: u32) -> std::io::Result<SpillWriter> {
        let f = crate::parse::output::create_file(path)?;
        Ok(SpillWriter { w: BufWriter::with_capacity(1 << 20, f), path: path.to_path_buf(), part, off: 0, buf: Vec::with_capacity(4096) })
    }

    /// Append a list.
    pub fn put(&mut self, entries: &[RidEntry]) -> std::io::Result<SpillRef> {
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            let rid = &e.rid.as_bytes()[..e.rid.len().min(u16::MAX as usize)];
            b.extend_from_slice(&(rid.len() as u16).to_le_bytes());
            b.extend_from_slice(rid);
            let f = e.fields();
            let mask = f.iter().enumerate().fold(0u8, |m, (i, (_, v))| if v.is_some() { m | 1 << i } else { m });
            b.push(mask);
            b.extend(e.iter.iter().flat_map(|v| v.to_le_bytes()));
            b.extend(e.typ.iter().flat_map(|v| v.to_le_bytes()));
            for (_, v) in &f[2..] {
                b.extend(v.iter().flat_map(|v| v.to_le_bytes()));
            }
        }
        self.w.write_all(b)?;
        let len = std::num::NonZeroU32::new(b.len() as u32).expect("a list has its count");
        let r = SpillRef { part: self.part, off: self.off, len };
        self.off += b.len() as u64;
        Ok(r)
    }

    /// Flush and close; returns the path.
    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        self.w.flush()?;
        Ok(self.path)
    }
}

/// The spill files of a parse, by part, for reading lists back.
#[derive(Default)]
pub struct SpillStore {
    files: Vec<Option<(File, PathBuf)>>,
}

impl SpillStore {
    /// Open the spill files; `paths[i]` is part `i`'s (if it spilled).
    pub fn open(paths: Vec<Option<PathBuf>>) -> std::io::Result<SpillStore> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            files.push(match p {
                Some(p) => Some((File::open(&p)?, p)),
                None => None,
            });
        }
        Ok(SpillStore { files })
    }

    /// Read a list back (an empty list if the file or the bytes are unreadable).
    pub fn load(&self, r: SpillRef) -> Vec<RidEntry> {
        let Some(Some((f, _))) = self.files.get(r.part as usize) else { return Vec::new() };
        let mut b = vec![0u8; r.len.get() as usize];
        if f.read_exact_at(&mut b, r.off).is_err() {
            return Vec::new();
        }
        decode(&b).unwrap_or_default()
    }

    /// Remove the files.
    pub fn remove(self) {
        for (_, p) in self.files.into_iter().flatten() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn decode(b: &[u8]) -> Option<Vec<RidEntry>> {
    let mut p = 0;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b.get(p..p + n)?;
        p += n;
        Some(s)
    };
    let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let l = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        let rid = super::rid::lossy_string(take(l)?);
        let mask = take(1)?[0];
        let mut e = RidEntry { rid, ..RidEntry::default() };
        let mut word = |i: u8| -> Option<Option<[u8; 8]>> {
            if mask & 1 << i != 0 {
                Some(Some(take(8)?.try_into().ok()?))
            } else {
                Some(None)
            }
        };
        e.iter = word(0)?.map(i64::from_le_bytes);
        e.typ = word(1)?.map(i64::from_le_bytes);
        e.scheduled = word(2)?.map(f64::from_le_bytes);
        e.prompt = word(3)?.map(f64::from_le_bytes);
        e.computed = word(4)?.map(f64::from_le_bytes);
        e.spec_out = word(5)?.map(f64::from_le_bytes);
        e.spec_accepted = word(6)?.map(f64::from_le_bytes);
        out.push(e);
    }
    Some(out)
}

/// A batch row's list: in memory, or read back from the spill.
pub fn entries_of(store: &SpillStore, b: &super::batch::BatchRow) -> Arc<Vec<RidEntry>> {
    match b.spilled {
        Some(r) => Arc::new(store.load(r)),
        None => b.entries.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut w = SpillWriter::create(&p, 1).unwrap();
        let a = vec![
            RidEntry {
                rid: "a-1".into(),
                iter: Some(3),
                typ: Some(1),
                scheduled: Some(1.5),
                prompt: None,
                computed: Some(0.0),
                spec_out: None,
                spec_accepted: Some(2.0),
            },
            RidEntry { rid: "é".into(), ..RidEntry::default() },
        ];
        let r1 = w.put(&a).unwrap();
        let r2 = w.put(&[]).unwrap();
        w.finish().unwrap();
        let s = SpillStore::open(vec![None, Some(p)]).unwrap();
        assert_eq!(s.load(r1), a);
        assert_eq!(s.load(r2), Vec::new());
        assert_eq!(s.load(SpillRef { part: 0, off: 0, len: std::num::NonZeroU32::new(4).unwrap() }), Vec::new());
        s.remove();
    }
}
