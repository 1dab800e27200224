//! The per-process meta file `<stem>.meta`: a 4 KiB header page (mapped, holding live loss
//! counters that survive a SIGKILL) followed by an append-only log of CRC-checked entries —
//! interned strings, process meta info, clock anchors, capture start/stop, segment creation.
//!
//! Entry: `u32 len (total, padded to 8) | u16 kind | u16 0 | u32 crc32(payload) | u32 payload_len | payload`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

use crate::clock::Anchor;

/// Magic of the meta file.
pub const MAGIC: &[u8; 8] = b"MSPMETA1";
/// Format version.
pub const VERSION: u32 = 1;
/// Size of the header page; entries start here.
pub const HEADER_BYTES: u64 = 4096;
/// Bytes of an entry header.
pub const ENTRY_HEADER: usize = 16;
/// Offset of the counter array in the header.
pub const COUNTERS_AT: usize = 256;
/// Offset of the flags word.
pub const FLAGS_AT: usize = 44;
/// Flag: the process shut the file set down cleanly.
pub const FLAG_CLEAN: u32 = 1;
/// Flag: creating or growing a capture file failed (disk full, quota, file-size limit, run
/// directory removed); records from then on were dropped and counted. The errno is at
/// [`at::WRITE_ERRNO`].
pub const FLAG_WRITE_FAILED: u32 = 2;

/// Meta-log entry kinds.
pub mod entry {
    /// `u32 id | bytes`: an interned string.
    pub const STRING: u16 = 1;
    /// `u32 key_len | key | value`: process meta info.
    pub const META: u16 = 2;
    /// `i64 realtime_ns | u64 monotonic_ns`: a clock anchor pair.
    pub const ANCHOR: u16 = 3;
    /// `u64 monotonic_ns | u32 on(1)/off(0) | u32 reason`: capture started or stopped.
    pub const CAPTURE: u16 = 4;
    /// `u32 index | file name`: a ring segment was created.
    pub const SEGMENT: u16 = 5;
}

/// Why capture started or stopped (the `reason` of a CAPTURE entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    /// The config file's `enable`.
    Config = 0,
    /// `msp_start` / `msp_stop`.
    Api = 1,
    /// `timelimit` reached.
    TimeLimit = 2,
    /// `profiler_step_num` reached.
    StepLimit = 3,
    /// Process shutdown.
    Shutdown = 4,
}

/// Indices of the live counters in the header.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Counter {
    /// Records committed (published periodically and at shutdown).
    Written = 0,
    /// Bytes of committed records (published periodically).
    Bytes = 1,
    /// Records dropped because the ring was full.
    Dropped = 2,
    /// Records overwritten (overwrite policy).
    Overwritten = 3,
    /// Records dropped because they were larger than a chunk.
    Oversize = 4,
    /// Segments created.
    Segments = 5,
    /// Strings interned.
    Strings = 6,
    /// Errors raised inside Python hooks (reported by the shim).
    HookErrors = 7,
    /// Attribute-expression failures (reported by the shim).
    ExprErrors = 8,
    /// Device records lost: dropped by MSPTI for lack of buffer space (its own count), or
    /// refused by the bounded hand-off queue to the ring.
    DeviceDropped = 9,
}

/// Number of counter slots in the header.
pub const N_COUNTERS: usize = 16;

/// Process identity written into the header.
#[derive(Clone, Debug, Default)]
pub struct ProcessInfo {
    /// pid.
    pub pid: u32,
    /// Parent pid.
    pub ppid: u32,
    /// Host name.
    pub hostname: String,
    /// File-set stem (`ms_service_<host>-<pid>`).
    pub stem: String,
    /// Clock anchor at creation.
    pub anchor: Anchor,
    /// Local UTC offset in seconds.
    pub utc_offset_s: i32,
}

/// Header field offsets (shared with the reader).
pub mod at {
    /// u32 pid.
    pub const PID: usize = 16;
    /// u32 ppid.
    pub const PPID: usize = 20;
    /// i64 realtime anchor.
    pub const REALTIME: usize = 24;
    /// u64 monotonic anchor.
    pub const MONOTONIC: usize = 32;
    /// i32 UTC offset.
    pub const UTC_OFFSET: usize = 40;
    /// 64 bytes host name, NUL padded.
    pub const HOSTNAME: usize = 48;
    /// 64 bytes stem, NUL padded.
    pub const STEM: usize = 112;
    /// u32 errno of the first failed file creation or write (with [`super::FLAG_WRITE_FAILED`]).
    pub const WRITE_ERRNO: usize = 176;
}

/// An open meta file (writer side).
pub struct MetaFile {
    file: File,
    counters: Counters,
    end: u64,
}

/// Shared handle on the live counters and flags of a meta file's mapped header.
#[derive(Clone)]
pub struct Counters(Arc<MmapRaw>);

impl Counters {
    /// A live counter.
    pub fn get(&self, c: Counter) -> &AtomicU64 {
        // SAFETY: the map is 4096 bytes, page aligned; COUNTERS_AT + 8*16 < 4096; u64 aligned.
        unsafe { &*(self.0.as_mut_ptr().add(COUNTERS_AT + 8 * c as usize) as *const AtomicU64) }
    }

    /// Record that creating or growing a capture file failed with `errno` (the first one is kept).
    pub fn set_write_failed(&self, errno: i32) {
        // SAFETY: aligned u32s inside the header page.
        let (f, e) = unsafe { (&*(self.0.as_mut_ptr().add(FLAGS_AT) as *const AtomicU32), &*(self.0.as_mut_ptr().add(at::WRITE_ERRNO) as *const AtomicU32)) };
        if f.fetch_or(FLAG_WRITE_FAILED, Ordering::AcqRel) & FLAG_WRITE_FAILED == 0 {
            e.store(errno.max(0) as u32, Ordering::Release);
        }
    }

    /// Mark (or unmark) a clean shutdown.
    pub fn set_clean(&self, clean: bool) {
        // SAFETY: aligned u32 inside the header page.
        let f = unsafe { &*(self.0.as_mut_ptr().add(FLAGS_AT) as *const AtomicU32) };
        if clean {
            f.fetch_or(FLAG_CLEAN, Ordering::Release);
        } else {
            f.fetch_and(!FLAG_CLEAN, Ordering::Release);
        }
    }
}

fn put(h: &mut [u8], at: usize, b: &[u8]) {
    h[at..at + b.len()].copy_from_slice(b);
}

impl MetaFile {
    /// Create the file (already opened exclusively by the caller) and write its header.
    pub fn create(file: File, info: &ProcessInfo) -> io::Result<MetaFile> {
        Self::write_header(&file, info)?;
        Self::open(file)
    }

    /// Size a new, empty file and write its header (see [`crate::files::fs::Dir::create_new_with`]:
    /// readers then never see a meta file without its header).
    pub fn write_header(file: &File, info: &ProcessInfo) -> io::Result<()> {
        crate::files::fs::check_fsize_limit(HEADER_BYTES)?; // before set_len, which would raise SIGXFSZ
        file.set_len(HEADER_BYTES)?;
        crate::files::fs::preallocate(file, HEADER_BYTES)?;
        let mut h = vec![0u8; HEADER_BYTES as usize];
        put(&mut h, 0, MAGIC);
        put(&mut h, 8, &VERSION.to_le_bytes());
        put(&mut h, 12, &(HEADER_BYTES as u32).to_le_bytes());
        put(&mut h, at::PID, &info.pid.to_le_bytes());
        put(&mut h, at::PPID, &info.ppid.to_le_bytes());
        put(&mut h, at::REALTIME, &info.anchor.realtime_ns.to_le_bytes());
        put(&mut h, at::MONOTONIC, &info.anchor.monotonic_ns.to_le_bytes());
        put(&mut h, at::UTC_OFFSET, &info.utc_offset_s.to_le_bytes());
        let hn = &info.hostname.as_bytes()[..info.hostname.len().min(63)];
        put(&mut h, at::HOSTNAME, hn);
        let st = &info.stem.as_bytes()[..info.stem.len().min(63)];
        put(&mut h, at::STEM, st);
        file.write_all_at(&h, 0)
    }

    /// A file whose header [`write_header`](Self::write_header) wrote, for appending.
    pub fn open(file: File) -> io::Result<MetaFile> {
        let map = MmapOptions::new().len(HEADER_BYTES as usize).map_raw(&file)?;
        Ok(MetaFile { file, counters: Counters(Arc::new(map)), end: HEADER_BYTES })
    }

    /// The live counters of this file.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Append one entry with a single positioned write.
    pub fn append(&mut self, kind: u16, parts: &[&[u8]]) -> io::Result<()> {
        let plen: usize = parts.iter().map(|p| p.len()).sum();
        let total = (ENTRY_HEADER + plen + 7) & !7;
        let mut buf = Vec::with_capacity(total);
        let mut crc = crc32fast::Hasher::new();
        for p in parts {
            crc.update(p);
        }
        buf.extend_from_slice(&(total as u32).to_le_bytes());
        buf.extend_from_slice(&kind.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&crc.finalize().to_le_bytes());
        buf.extend_from_slice(&(plen as u32).to_le_bytes());
        for p in parts {
            buf.extend_from_slice(p);
        }
        buf.resize(total, 0);
        let res = crate::files::fs::check_fsize_limit(self.end + total as u64).and_then(|_| self.file.write_all_at(&buf, self.end));
        if let Err(e) = res {
            self.counters.set_write_failed(e.raw_os_error().unwrap_or(0));
            return Err(e);
        }
        self.end += total as u64;
        Ok(())
    }

    /// Append an interned string definition.
    pub fn string(&mut self, id: u32, s: &[u8]) -> io::Result<()> {
        self.append(entry::STRING, &[&id.to_le_bytes(), s])
    }

    /// Append a clock anchor.
    pub fn anchor(&mut self, a: Anchor) -> io::Result<()> {
        self.append(entry::ANCHOR, &[&a.realtime_ns.to_le_bytes(), &a.monotonic_ns.to_le_bytes()])
    }

    /// Append a capture start/stop marker.
    pub fn capture(&mut self, ts: u64, on: bool, reason: Reason) -> io::Result<()> {
        self.append(entry::CAPTURE, &[&ts.to_le_bytes(), &(on as u32).to_le_bytes(), &(reason as u32).to_le_bytes()])
    }

    /// Append a meta key/value.
    pub fn meta(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.append(entry::META, &[&(key.len() as u32).to_le_bytes(), key, value])
    }
}
