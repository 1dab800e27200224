//! The reader: lists the file sets of one or more run directories, validates them, recovers
//! every committed record, and reports what was torn, corrupt, dropped or overwritten. It reads
//! with positioned reads only, so it can run while a capture is still being written without
//! slowing or disturbing the writers.

pub mod json;
pub mod meta;
pub mod segment;

use std::path::{Path, PathBuf};

pub use meta::ProcessMeta;
pub use segment::{ChunkScan, SegmentInfo};

use crate::files::meta::Counter;
use crate::record::View;

/// One process's file set on disk.
#[derive(Clone, Debug)]
pub struct FileSet {
    /// `<stem>.meta`.
    pub meta: PathBuf,
    /// `<stem>.<index>.ring`, by index.
    pub segments: Vec<PathBuf>,
    /// The stem (`ms_service_<host>-<pid>[-n]`).
    pub stem: String,
}

/// Find every file set below `root` (recursively; several run directories, e.g. copied from
/// several hosts side by side, are fine). Symlinks are not followed.
pub fn discover(root: &Path) -> Vec<FileSet> {
    let mut metas = Vec::new();
    walk(root, &mut metas, 0);
    metas.sort();
    metas
        .into_iter()
        .filter_map(|m| {
            let stem = m.file_name()?.to_str()?.strip_suffix(".meta")?.to_string();
            let dir = m.parent()?;
            let mut segs: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .filter_map(|e| {
                    let n = e.file_name().into_string().ok()?;
                    let idx = n.strip_prefix(&stem)?.strip_prefix('.')?.strip_suffix(".ring")?;
                    (idx.len() == 6).then(|| idx.parse().ok()).flatten().map(|i| (i, e.path()))
                })
                .collect();
            segs.sort();
            Some(FileSet { meta: m, segments: segs.into_iter().map(|(_, p)| p).collect(), stem })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            walk(&p, out, depth + 1);
        } else if ft.is_file() && p.extension().is_some_and(|x| x == "meta") {
            out.push(p);
        }
    }
}

/// Totals of reading one process (or several, summed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Records recovered.
    pub records: u64,
    /// Chunks read.
    pub chunks: u64,
    /// Chunks still owned by a writer (live capture, or the process was killed).
    pub open_chunks: u64,
    /// Torn (uncommitted) records found after the last committed record of a chunk.
    pub torn_records: u64,
    /// Bytes of those torn records.
    pub torn_bytes: u64,
    /// Chunks with corrupt or truncated data (the rest of such a chunk is skipped).
    pub corrupt_chunks: u64,
    /// Bytes skipped as corrupt or missing.
    pub corrupt_bytes: u64,
    /// Chunks recycled while being read (skipped).
    pub raced_chunks: u64,
    /// Records the writers dropped because the ring was full.
    pub dropped: u64,
    /// Records the writers overwrote (overwrite policy).
    pub overwritten: u64,
    /// Records dropped for being larger than a chunk.
    pub oversize: u64,
    /// Device records lost before reaching the ring (MSPTI's dropped count, our hand-off queue).
    pub device_dropped: u64,
    /// Hook errors the shim reported.
    pub hook_errors: u64,
    /// Expression errors the shim reported.
    pub expr_errors: u64,
    /// Processes that did not shut down cleanly.
    pub unclean: u64,
    /// Problems, one line each (file: what).
    pub problems: Vec<String>,
}

impl Report {
    /// Add another report into this one.
    pub fn merge(&mut self, o: &Report) {
        // Saturating: several counters come from the (possibly damaged) meta files.
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.records, o.records);
        add(&mut self.chunks, o.chunks);
        add(&mut self.open_chunks, o.open_chunks);
        add(&mut self.torn_records, o.torn_records);
        add(&mut self.torn_bytes, o.torn_bytes);
        add(&mut self.corrupt_chunks, o.corrupt_chunks);
        add(&mut self.corrupt_bytes, o.corrupt_bytes);
        add(&mut self.raced_chunks, o.raced_chunks);
        add(&mut self.dropped, o.dropped);
        add(&mut self.overwritten, o.overwritten);
        add(&mut self.oversize, o.oversize);
        add(&mut self.device_dropped, o.device_dropped);
        add(&mut self.hook_errors, o.hook_errors);
        add(&mut self.expr_errors, o.expr_errors);
        add(&mut self.unclean, o.unclean);
        self.problems.extend(o.problems.iter().cloned());
    }
}

/// A record with its context.
pub struct Item<'a> {
    /// The process's meta (strings, anchors, host).
    pub process: &'a ProcessMeta,
    /// The decoded record.
    pub record: View<'a>,
}

/// One process, ready to stream.
pub struct Process {
    /// Its meta file, parsed.
    pub meta: ProcessMeta,
    /// Its files.
    pub files: FileSet,
}

impl Process {
    /// Read the meta file of `files`.
    pub fn open(files: FileSet) -> Result<Process, String> {
        Ok(Process { meta: meta::read(&files.meta)?, files })
    }

    /// Stream every committed record, chunk by chunk in claim order across all segments
    /// (records of one thread are in time order; across threads they interleave by chunk).
    /// Memory use is one chunk plus 24 bytes per chunk for the ordering.
    pub fn scan(&self, mut f: impl FnMut(Item<'_>)) -> Report {
        let m = &self.meta;
        let mut r = Report {
            dropped: m.counter(Counter::Dropped),
            overwritten: m.counter(Counter::Overwritten),
            oversize: m.counter(Counter::Oversize),
            device_dropped: m.counter(Counter::DeviceDropped),
            hook_errors: m.counter(Counter::HookErrors),
            expr_errors: m.counter(Counter::ExprErrors),
            unclean: !m.clean as u64,
            ..Report::default()
        };
        let name = &self.files.stem;
        r.problems.extend(m.problems.iter().map(|p| format!("{name}: {p}")));
        // Chunks are claimed in one global order across segments (`seq`); segments may be created
        // out of index order (a spare racing an inline creation), so order by `seq` over all of them.
        let mut segs = Vec::new();
        for path in &self.files.segments {
            match segment::open(path) {
                Ok((file, info)) => {
                    if info.chunks_present < info.chunk_count {
                        r.problems.push(format!("{}: truncated: {} of {} chunks present", path.display(), info.chunks_present, info.chunk_count));
                    }
                    segs.push((file, info));
                }
                Err(e) => r.problems.push(e),
            }
        }
        let mut order: Vec<(usize, segment::ChunkRef)> =
            segs.iter().enumerate().flat_map(|(i, (file, info))| segment::chunks(file, info).into_iter().map(move |c| (i, c))).collect();
        order.sort_by_key(|(_, c)| c.seq);
        let mut buf = Vec::new();
        // Read live, the process may intern strings after its meta file was read: when the file
        // has grown by the time a chunk is read, it is read again before the chunk is decoded (a
        // string is written to the meta file before any record uses its id).
        let mut fresh: Option<ProcessMeta> = None;
        let mut meta_bytes = m.bytes;
        for (i, c) in order {
            let (file, info) = &segs[i];
            let path = &info.path;
            let s = match segment::read_chunk(file, info, c, &mut buf) {
                Err(s) => s,
                Ok(()) => {
                    if std::fs::metadata(&self.files.meta).is_ok_and(|md| md.len() > meta_bytes) {
                        if let Ok(x) = meta::read(&self.files.meta) {
                            meta_bytes = x.bytes;
                            fresh = Some(x);
                        }
                    }
                    let m = fresh.as_ref().unwrap_or(m);
                    segment::decode_chunk(info, &buf, |v| f(Item { process: m, record: v }))
                }
            };
            r.chunks += 1;
            r.records += s.records;
            r.open_chunks += s.open as u64;
            r.raced_chunks += s.raced as u64;
            if s.torn_bytes > 0 {
                r.torn_records += 1;
                r.torn_bytes += s.torn_bytes;
            }
            if s.corrupt_bytes > 0 {
                r.corrupt_chunks += 1;
                r.corrupt_bytes += s.corrupt_bytes;
                r.problems.push(format!("{}: chunk {}: {} bytes corrupt or missing, skipped", path.display(), c.index, s.corrupt_bytes));
            }
        }
        if r.torn_records > 0 {
            r.problems
                .push(format!("{name}: {} torn record(s) ({} bytes) not committed — process killed mid-write or still running", r.torn_records, r.torn_bytes));
        }
        r
    }
}
