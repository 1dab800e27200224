//! Reading ring segments chunk by chunk with positioned reads (no mapping, so a file truncated
//! under us cannot fault the reader, and a live writer is never disturbed).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::record::{self, DecodeError, View};
use crate::ring::segment::{at, chunk_at, CHUNK_HEADER, CHUNK_MAGIC, HEADER_BYTES, MAGIC, SEQ_BUSY, VERSION};

/// A segment's header.
#[derive(Clone, Debug)]
pub struct SegmentInfo {
    /// Path.
    pub path: PathBuf,
    /// Index in the file set.
    pub index: u32,
    /// Bytes per chunk.
    pub chunk_bytes: usize,
    /// Chunks declared by the header.
    pub chunk_count: usize,
    /// Chunks actually present in the file (fewer if it was truncated).
    pub chunks_present: usize,
    /// Written with the overwrite policy.
    pub overwrite: bool,
}

/// One chunk's identity.
#[derive(Clone, Copy, Debug)]
pub struct ChunkRef {
    /// Chunk index within the segment.
    pub index: usize,
    /// Claim order.
    pub seq: u64,
}

/// What scanning one chunk found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkScan {
    /// Records decoded.
    pub records: u64,
    /// The chunk was still owned by a writer (process live, or killed while writing).
    pub open: bool,
    /// Bytes of a torn (uncommitted) record after the last committed one.
    pub torn_bytes: u64,
    /// Bytes that failed validation (corruption), from the first bad record to the chunk's end.
    pub corrupt_bytes: u64,
    /// The chunk was recycled while being read (overwrite policy, live capture): skipped.
    pub raced: bool,
}

/// Open a segment and validate its header.
pub fn open(path: &Path) -> Result<(File, SegmentInfo), String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = f.metadata().map_err(|e| e.to_string())?.len() as usize;
    let mut h = [0u8; 64];
    if len < HEADER_BYTES || f.read_exact_at(&mut h, 0).is_err() || &h[..8] != MAGIC {
        return Err(format!("{}: not a ring segment (bad magic or shorter than its header)", path.display()));
    }
    let u32at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
    if u32at(at::VERSION) != VERSION || u32at(at::HEADER_BYTES) as usize != HEADER_BYTES {
        return Err(format!("{}: unsupported segment version {}", path.display(), u32at(at::VERSION)));
    }
    let chunk_bytes = u32at(at::CHUNK_BYTES) as usize;
    let chunk_count = u32at(at::CHUNK_COUNT) as usize;
    if !(CHUNK_HEADER + record::FIXED..=1 << 30).contains(&chunk_bytes) || chunk_bytes % 8 != 0 || chunk_count == 0 {
        return Err(format!("{}: corrupt segment header (chunk size {chunk_bytes}, count {chunk_count})", path.display()));
    }
    let present = ((len - HEADER_BYTES) / chunk_bytes).min(chunk_count);
    let info =
        SegmentInfo { path: path.to_path_buf(), index: u32at(at::INDEX), chunk_bytes, chunk_count, chunks_present: present, overwrite: u32at(at::POLICY) == 1 };
    Ok((f, info))
}

/// The claimed chunks of a segment in claim order (a partial last chunk of a truncated file
/// is included; its missing part is reported by [`decode_chunk`]).
pub fn chunks(f: &File, info: &SegmentInfo) -> Vec<ChunkRef> {
    let mut out = Vec::new();
    let mut h = [0u8; 16];
    for i in 0..info.chunk_count {
        let off = (HEADER_BYTES + i * info.chunk_bytes) as u64;
        if f.read_exact_at(&mut h, off).is_err() {
            break;
        }
        let seq = u64::from_le_bytes(h[0..8].try_into().unwrap());
        let magic = u32::from_le_bytes(h[12..16].try_into().unwrap());
        if seq != 0 && seq != SEQ_BUSY && magic == CHUNK_MAGIC {
            out.push(ChunkRef { index: i, seq });
        }
    }
    out.sort_by_key(|c| c.seq);
    out
}

/// Read chunk `c` into `buf` (one positioned read: every record in it was committed before
/// the read). `Err` is the whole result when there is nothing to decode (file too short; the
/// chunk was recycled since it was listed); otherwise decode it with [`decode_chunk`].
pub fn read_chunk(file: &File, info: &SegmentInfo, c: ChunkRef, buf: &mut Vec<u8>) -> Result<(), ChunkScan> {
    let mut s = ChunkScan::default();
    buf.resize(info.chunk_bytes, 0);
    let off = (HEADER_BYTES + c.index * info.chunk_bytes) as u64;
    let got = read_full(file, off, buf);
    buf.truncate(got);
    if got < CHUNK_HEADER {
        s.corrupt_bytes = info.chunk_bytes as u64;
        return Err(s);
    }
    let seq = u64::from_le_bytes(buf[chunk_at::SEQ..chunk_at::SEQ + 8].try_into().unwrap());
    if seq != c.seq {
        s.raced = true;
        return Err(s);
    }
    Ok(())
}

/// Call `f` for each committed record of a chunk [`read_chunk`] read into `buf`, in write order.
pub fn decode_chunk(info: &SegmentInfo, buf: &[u8], mut f: impl FnMut(View<'_>)) -> ChunkScan {
    let mut s = ChunkScan::default();
    let got = buf.len();
    let closed = u64::from_le_bytes(buf[chunk_at::CLOSED_BYTES..chunk_at::CLOSED_BYTES + 8].try_into().unwrap()) as usize;
    s.open = closed == 0;
    let mut pos = CHUNK_HEADER;
    while pos < buf.len() {
        match record::decode(&buf[pos..]) {
            Ok((v, n)) => {
                f(v);
                s.records += 1;
                pos += n;
            }
            Err(DecodeError::Empty) => {
                let rest = &buf[pos..];
                if let Some(last) = rest.iter().rposition(|&b| b != 0) {
                    s.torn_bytes = (last + 1) as u64;
                }
                break;
            }
            Err(_) => {
                s.corrupt_bytes = (buf.len() - pos) as u64;
                break;
            }
        }
    }
    if got < info.chunk_bytes && s.corrupt_bytes == 0 {
        s.corrupt_bytes = (info.chunk_bytes - got) as u64; // truncated file
    }
    s
}

fn read_full(f: &File, mut off: u64, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                done += n;
                off += n as u64;
            }
        }
    }
    done
}
