//! A ring segment: one preallocated, mapped file `<stem>.<index>.ring` — a 4 KiB header page,
//! then `chunk_count` chunks. A chunk is owned by one writer thread at a time; it starts with a
//! 64-byte chunk header, followed by records (see `record.rs`).
//!
//! Chunk header: `u64 seq` (claim order + 1; 0 = never used; `BUSY` while being recycled) |
//! `u32 tid` | `u32 magic` | `i64 realtime` | `u64 monotonic` (clock anchor at claim) |
//! `u64 closed_bytes` (0 while a writer owns it) | `u64 closed_records`.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::clock::Anchor;
use crate::files::fs::{preallocate, Dir};

/// Magic of a segment file.
pub const MAGIC: &[u8; 8] = b"MSPRING1";
/// Segment format version.
pub const VERSION: u32 = 1;
/// Header page size; chunk 0 starts here.
pub const HEADER_BYTES: usize = 4096;
/// Bytes of a chunk header; records start here within a chunk.
pub const CHUNK_HEADER: usize = 64;
/// Magic stored in every claimed chunk header.
pub const CHUNK_MAGIC: u32 = u32::from_le_bytes(*b"MSPC");
/// `seq` value of a chunk being recycled (overwrite policy).
pub const SEQ_BUSY: u64 = u64::MAX;

/// Segment header field offsets (shared with the reader).
pub mod at {
    /// u32 version.
    pub const VERSION: usize = 8;
    /// u32 header bytes.
    pub const HEADER_BYTES: usize = 12;
    /// u32 chunk bytes.
    pub const CHUNK_BYTES: usize = 16;
    /// u32 chunk count.
    pub const CHUNK_COUNT: usize = 20;
    /// u32 segment index.
    pub const INDEX: usize = 24;
    /// u32 pid.
    pub const PID: usize = 28;
    /// i64 realtime at creation.
    pub const REALTIME: usize = 32;
    /// u64 monotonic at creation.
    pub const MONOTONIC: usize = 40;
    /// u32 policy: 0 drop, 1 overwrite.
    pub const POLICY: usize = 48;
}

/// Chunk header field offsets (shared with the reader).
pub mod chunk_at {
    /// u64 seq.
    pub const SEQ: usize = 0;
    /// u32 tid.
    pub const TID: usize = 8;
    /// u32 magic.
    pub const MAGIC: usize = 12;
    /// i64 realtime anchor.
    pub const REALTIME: usize = 16;
    /// u64 monotonic anchor.
    pub const MONOTONIC: usize = 24;
    /// u64 committed bytes at close (including the chunk header); 0 while owned.
    pub const CLOSED_BYTES: usize = 32;
    /// u64 records at close.
    pub const CLOSED_RECORDS: usize = 40;
}

/// A mapped segment.
pub struct Segment {
    map: MmapRaw,
    _file: File,
    /// Index within the process's file set.
    pub index: u32,
    /// Bytes per chunk.
    pub chunk_bytes: usize,
    /// Number of chunks.
    pub chunk_count: usize,
    /// Next chunk to hand out (grows past `chunk_count`; used modulo it when recycling).
    pub(crate) cursor: AtomicU64,
    /// Chunks below this index have their pages mapped writable already.
    populated: AtomicU64,
}

/// The file name of segment `index` of file set `stem`.
pub fn file_name(stem: &str, index: u32) -> String {
    format!("{stem}.{index:06}.ring")
}

impl Segment {
    /// Create, preallocate and map a new segment file in `dir`.
    pub fn create(dir: &Dir, stem: &str, index: u32, segment_bytes: u64, chunk_bytes: usize, overwrite: bool, pid: u32) -> io::Result<Segment> {
        let chunk_count = ((segment_bytes as usize).saturating_sub(HEADER_BYTES) / chunk_bytes).max(1);
        let len = HEADER_BYTES + chunk_count * chunk_bytes;
        crate::files::fs::check_fsize_limit(len as u64)?; // before set_len, which would raise SIGXFSZ
        let file = dir.create_new(&file_name(stem, index))?;
        file.set_len(len as u64)?;
        preallocate(&file, len as u64)?;
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        let a = Anchor::now();
        let mut h = [0u8; 64];
        h[..8].copy_from_slice(MAGIC);
        let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
        put(at::VERSION, &VERSION.to_le_bytes());
        put(at::HEADER_BYTES, &(HEADER_BYTES as u32).to_le_bytes());
        put(at::CHUNK_BYTES, &(chunk_bytes as u32).to_le_bytes());
        put(at::CHUNK_COUNT, &(chunk_count as u32).to_le_bytes());
        put(at::INDEX, &index.to_le_bytes());
        put(at::PID, &pid.to_le_bytes());
        put(at::REALTIME, &a.realtime_ns.to_le_bytes());
        put(at::MONOTONIC, &a.monotonic_ns.to_le_bytes());
        put(at::POLICY, &(overwrite as u32).to_le_bytes());
        // SAFETY: the map is at least 4096 bytes and nobody else writes the header.
        unsafe { std::ptr::copy_nonoverlapping(h.as_ptr(), map.as_mut_ptr(), h.len()) };
        Ok(Segment { map, _file: file, index, chunk_bytes, chunk_count, cursor: AtomicU64::new(0), populated: AtomicU64::new(0) })
    }

    /// Start of chunk `i`.
    pub(crate) fn chunk(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.chunk_count);
        // SAFETY: i < chunk_count, within the mapping.
        unsafe { self.map.as_mut_ptr().add(HEADER_BYTES + i * self.chunk_bytes) }
    }

    /// An atomic u64 field of chunk `i`'s header.
    pub(crate) fn word(&self, i: usize, at: usize) -> &AtomicU64 {
        // SAFETY: 8-aligned field inside the chunk header of a live mapping.
        unsafe { &*(self.chunk(i).add(at) as *const AtomicU64) }
    }

    /// Fraction of fresh chunks handed out.
    pub fn used(&self) -> f64 {
        (self.cursor.load(Ordering::Relaxed) as f64 / self.chunk_count as f64).min(1.0)
    }

    /// Chunks populated so far.
    pub(crate) fn populated(&self) -> usize {
        self.populated.load(Ordering::Relaxed) as usize
    }

    /// Fault in the pages of the chunks from the last populated one up to `upto` (exclusive),
    /// writable, without changing their contents, so writers do not take page faults there.
    /// Called from the control thread only. Returns false when the kernel cannot do it.
    pub(crate) fn populate(&self, upto: usize) -> bool {
        let upto = upto.min(self.chunk_count) as u64;
        let from = self.populated.load(Ordering::Relaxed);
        if from >= upto {
            return true;
        }
        let start = self.chunk(from as usize);
        let len = (upto - from) as usize * self.chunk_bytes;
        // SAFETY: the range lies inside our mapping; POPULATE_WRITE does not modify contents.
        let ok = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) } == 0;
        self.populated.store(upto, Ordering::Relaxed);
        ok
    }

    /// Fill chunk `i`'s header for a new owner and publish it with `seq`.
    pub(crate) fn open_chunk(&self, i: usize, seq: u64, tid: u32) {
        let p = self.chunk(i);
        let a = Anchor::now();
        // SAFETY: the chunk is exclusively ours (fresh claim, or BUSY after a successful CAS).
        unsafe {
            std::ptr::write_unaligned(p.add(chunk_at::TID) as *mut u32, tid);
            std::ptr::write_unaligned(p.add(chunk_at::MAGIC) as *mut u32, CHUNK_MAGIC);
            std::ptr::write_unaligned(p.add(chunk_at::REALTIME) as *mut i64, a.realtime_ns);
            std::ptr::write_unaligned(p.add(chunk_at::MONOTONIC) as *mut u64, a.monotonic_ns);
        }
        self.word(i, chunk_at::CLOSED_BYTES).store(0, Ordering::Relaxed);
        self.word(i, chunk_at::CLOSED_RECORDS).store(0, Ordering::Relaxed);
        self.word(i, chunk_at::SEQ).store(seq, Ordering::Release);
    }
}
