//! Per-part spill files of profiler.db timeline rows. Each part of a process writes its slice and
//! counter rows here while it is read (memory stays bounded whatever the capture size), and the
//! profiler.db writer inserts the parts in (process, part) order at the end, so row ids and track
//! ids are the same on every run, however the parts were scheduled.
//!
//! A row is `u32 length` then: kind `u8` (0 slice, 1 counter), `ts i64`, `dur i64`, `pid u64`,
//! then `name`, `tid` (thread name; empty for counters), `cat`, `args` as `u32 length + bytes`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// One spilled row, borrowing the reader's buffer.
pub struct Row<'a> {
    /// A slice (else a counter sample).
    pub slice: bool,
    /// Start, epoch ns.
    pub ts: i64,
    /// Duration, ns (0 for counters).
    pub dur: i64,
    /// Trace pid.
    pub pid: u64,
    /// Slice or counter name.
    pub name: &'a str,
    /// Thread name (slices).
    pub tid: &'a str,
    /// Domain.
    pub cat: &'a str,
    /// Arguments, JSON.
    pub args: &'a str,
}

/// Writer of one part's rows.
pub struct PartWriter {
    w: BufWriter<File>,
    path: PathBuf,
    row: Vec<u8>,
}

impl PartWriter {
    /// Create the spill file `path` (0640).
    pub fn create(path: &Path) -> std::io::Result<PartWriter> {
        Ok(PartWriter {
            w: BufWriter::with_capacity(1 << 20, crate::parse::output::create_file(path)?),
            path: path.to_path_buf(),
            row: Vec::with_capacity(512),
        })
    }

    /// Append one row.
    pub fn put(&mut self, r: &Row<'_>) -> std::io::Result<()> {
        let b = &mut self.row;
        b.clear();
        b.extend_from_slice(&[0; 4]);
        b.push(!r.slice as u8);
        b.extend_from_slice(&r.ts.to_le_bytes());
        b.extend_from_slice(&r.dur.to_le_bytes());
        b.extend_from_slice(&r.pid.to_le_bytes());
        for s in [r.name, r.tid, r.cat, r.args] {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        let n = (b.len() - 4) as u32;
        b[..4].copy_from_slice(&n.to_le_bytes());
        self.w.write_all(b)
    }

    /// Flush and close; returns the path.
    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        self.w.flush()?;
        Ok(self.path)
    }
}

fn bad() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "damaged profiler.db spill file")
}

/// Call `f` for every row of the spill file `path`, in write order (`io` converts read errors).
pub fn read<E>(path: &Path, mut f: impl FnMut(&Row<'_>) -> Result<(), E>, io: impl Fn(std::io::Error) -> E) -> Result<(), E> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(&io)?);
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(io(e)),
        }
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        r.read_exact(&mut buf).map_err(&io)?;
        f(&decode(&buf).ok_or_else(|| io(bad()))?)?;
    }
}

fn decode(b: &[u8]) -> Option<Row<'_>> {
    let u64at = |o: usize| -> Option<u64> { Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?)) };
    let mut pos = 25;
    let mut text = || -> Option<&str> {
        let n = u32::from_le_bytes(b.get(pos..pos + 4)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(b.get(pos + 4..pos + 4 + n)?).ok()?;
        pos += 4 + n;
        Some(s)
    };
    Some(Row {
        slice: *b.first()? == 0,
        ts: u64at(1)? as i64,
        dur: u64at(9)? as i64,
        pid: u64at(17)?,
        name: text()?,
        tid: text()?,
        cat: text()?,
        args: text()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.part");
        let mut w = PartWriter::create(&p).unwrap();
        let rows = [
            Row { slice: true, ts: -5, dur: 7, pid: 42, name: "modelExec", tid: "Execute(9)", cat: "Execute", args: "{\"a\":1}" },
            Row { slice: false, ts: 1 << 60, dur: 0, pid: 1, name: "KV Usage", tid: "", cat: "KVCache", args: "{}" },
        ];
        for r in &rows {
            w.put(r).unwrap();
        }
        let p = w.finish().unwrap();
        let mut got = Vec::new();
        read(
            &p,
            |r| {
                got.push((r.slice, r.ts, r.dur, r.pid, r.name.to_string(), r.tid.to_string(), r.cat.to_string(), r.args.to_string()));
                Ok(())
            },
            |e| e,
        )
        .unwrap();
        let want: Vec<_> =
            rows.iter().map(|r| (r.slice, r.ts, r.dur, r.pid, r.name.to_string(), r.tid.to_string(), r.cat.to_string(), r.args.to_string())).collect();
        assert_eq!(got, want);
    }
}
