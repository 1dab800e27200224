//! Reading a meta file: header, then the entry log with CRC checks; a damaged stretch is skipped
//! by resynchronising on the next valid entry, and reported.

use std::path::Path;

use crate::clock::Anchor;
use crate::files::meta::{at, entry, Counter, COUNTERS_AT, ENTRY_HEADER, FLAGS_AT, FLAG_CLEAN, FLAG_WRITE_FAILED, HEADER_BYTES, MAGIC, N_COUNTERS};

/// A capture start/stop marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    /// CLOCK_MONOTONIC ns.
    pub ts: u64,
    /// Started (true) or stopped.
    pub on: bool,
    /// `files::meta::Reason` as a number.
    pub reason: u32,
}

/// Everything a meta file says about its process.
#[derive(Clone, Debug, Default)]
pub struct ProcessMeta {
    /// pid.
    pub pid: u32,
    /// Parent pid.
    pub ppid: u32,
    /// Host name.
    pub hostname: String,
    /// File-set stem.
    pub stem: String,
    /// Anchor at creation, then every periodic one, in file order.
    pub anchors: Vec<Anchor>,
    /// UTC offset of the capture host, seconds.
    pub utc_offset_s: i32,
    /// The process shut down cleanly (false: killed, crashed, or still running).
    pub clean: bool,
    /// Creating or growing a capture file failed with this errno (`Some(0)`: unknown errno);
    /// records from then on were dropped and counted.
    pub write_error: Option<u32>,
    /// Live counters from the header (see `files::meta::Counter`).
    pub counters: [u64; N_COUNTERS],
    /// Interned strings by id (index 0 unused).
    pub strings: Vec<Option<String>>,
    /// Meta key/values in file order.
    pub meta: Vec<(String, String)>,
    /// Capture start/stop markers.
    pub captures: Vec<Capture>,
    /// Problems found (corrupt entries skipped, truncation).
    pub problems: Vec<String>,
    /// Bytes of the entry log that could not be read.
    pub skipped_bytes: u64,
    /// Size of the meta file when it was read.
    pub bytes: u64,
}

impl ProcessMeta {
    /// A counter value.
    pub fn counter(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    /// The string of an id, or a placeholder.
    pub fn string(&self, id: u32) -> &str {
        self.strings.get(id as usize).and_then(|s| s.as_deref()).unwrap_or(if id == 0 { "" } else { "<unknown>" })
    }

    /// The last value of meta key `k`.
    pub fn meta_value(&self, k: &str) -> Option<&str> {
        self.meta.iter().rev().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
}

fn u32at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// Read and validate a meta file. Errors only when the header itself is unusable.
pub fn read(path: &Path) -> Result<ProcessMeta, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&data).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parse meta-file bytes.
pub fn parse(data: &[u8]) -> Result<ProcessMeta, String> {
    if data.len() < HEADER_BYTES as usize || &data[..8] != MAGIC {
        return Err("not a meta file (bad magic or shorter than its header)".into());
    }
    let version = u32at(data, 8);
    if version != crate::files::meta::VERSION {
        return Err(format!("unsupported meta format version {version}"));
    }
    let mut m = ProcessMeta {
        pid: u32at(data, at::PID),
        ppid: u32at(data, at::PPID),
        hostname: cstr(&data[at::HOSTNAME..at::HOSTNAME + 64]),
        stem: cstr(&data[at::STEM..at::STEM + 64]),
        anchors: vec![Anchor { realtime_ns: u64at(data, at::REALTIME) as i64, monotonic_ns: u64at(data, at::MONOTONIC) }],
        utc_offset_s: u32at(data, at::UTC_OFFSET) as i32,
        clean: u32at(data, FLAGS_AT) & FLAG_CLEAN != 0,
        write_error: (u32at(data, FLAGS_AT) & FLAG_WRITE_FAILED != 0).then(|| u32at(data, at::WRITE_ERRNO)),
        bytes: data.len() as u64,
        ..ProcessMeta::default()
    };
    for i in 0..N_COUNTERS {
        m.counters[i] = u64at(data, COUNTERS_AT + 8 * i);
    }
    // Ids are handed out densely from 1, one entry (≥ 16 bytes) each: a larger id is damage, and
    // honouring it would allocate up to 2^24 slots (found by fuzzing: 400 MB for one entry).
    let max_id = (data.len() / ENTRY_HEADER).min(1 << 24);
    let mut pos = HEADER_BYTES as usize;
    let mut bad_from: Option<usize> = None;
    while pos + ENTRY_HEADER <= data.len() {
        match entry_at(data, pos) {
            Some((kind, payload, len)) => {
                if let Some(b) = bad_from.take() {
                    m.problems.push(format!("meta log: {} damaged bytes skipped at offset {b}", pos - b));
                    m.skipped_bytes += (pos - b) as u64;
                }
                apply(&mut m, kind, payload, max_id);
                pos += len;
            }
            None => {
                if bad_from.is_none() && data[pos..].iter().all(|&b| b == 0) {
                    break; // preallocated / never written
                }
                bad_from.get_or_insert(pos);
                pos += 8;
            }
        }
    }
    if let Some(b) = bad_from {
        let n = data.len() - b;
        m.problems.push(format!("meta log: torn or damaged tail of {n} bytes at offset {b}"));
        m.skipped_bytes += n as u64;
    }
    Ok(m)
}

fn entry_at(data: &[u8], pos: usize) -> Option<(u16, &[u8], usize)> {
    let len = u32at(data, pos) as usize;
    let kind = u16::from_le_bytes([data[pos + 4], data[pos + 5]]);
    let crc = u32at(data, pos + 8);
    let plen = u32at(data, pos + 12) as usize;
    if len < ENTRY_HEADER || len % 8 != 0 || pos + len > data.len() || ENTRY_HEADER + plen > len || kind == 0 || kind > 64 {
        return None;
    }
    let payload = &data[pos + ENTRY_HEADER..pos + ENTRY_HEADER + plen];
    (crc32fast::hash(payload) == crc).then_some((kind, payload, len))
}

fn apply(m: &mut ProcessMeta, kind: u16, p: &[u8], max_id: usize) {
    match kind {
        entry::STRING if p.len() >= 4 => {
            let id = u32at(p, 0) as usize;
            if id <= max_id {
                if m.strings.len() <= id {
                    m.strings.resize(id + 1, None);
                }
                m.strings[id] = Some(String::from_utf8_lossy(&p[4..]).into_owned());
            }
        }
        entry::META if p.len() >= 4 => {
            let kl = (u32at(p, 0) as usize).min(p.len() - 4);
            let k = String::from_utf8_lossy(&p[4..4 + kl]).into_owned();
            let v = String::from_utf8_lossy(&p[4 + kl..]).into_owned();
            m.meta.push((k, v));
        }
        entry::ANCHOR if p.len() >= 16 => m.anchors.push(Anchor { realtime_ns: u64at(p, 0) as i64, monotonic_ns: u64at(p, 8) }),
        entry::CAPTURE if p.len() >= 16 => m.captures.push(Capture { ts: u64at(p, 0), on: u32at(p, 8) != 0, reason: u32at(p, 12) }),
        _ => {} // unknown kinds from newer writers are skipped
    }
}

impl ProcessMeta {
    /// Convert a CLOCK_MONOTONIC timestamp of this process to epoch ns, using the latest anchor
    /// taken at or before it (the first anchor for earlier times).
    pub fn to_wall(&self, mono: u64) -> i64 {
        let i = self.anchors.partition_point(|a| a.monotonic_ns <= mono);
        let a = self.anchors.get(i.saturating_sub(1)).copied().unwrap_or_default();
        a.to_realtime(mono)
    }
}
