//! The meta-file reader on arbitrary bytes: header, CRC-checked entry log with resynchronisation.
//! The input's first 4 KiB are the header; what follows is the entry log. To get past the CRC,
//! the input may instead be a list of entries (`u16 kind | u16 len | payload`) after the header,
//! which the target frames with correct CRCs — so both the framing checks and the entry
//! decoders get fuzzed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ms_service_profiler::files::meta::{HEADER_BYTES, MAGIC, VERSION};
use ms_service_profiler::reader::meta;

fn framed(data: &[u8]) -> Vec<u8> {
    let h = HEADER_BYTES as usize;
    let mut out = vec![0u8; h];
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let n = data.len().min(h - 8);
    out[16..16 + n.saturating_sub(8)].copy_from_slice(&data[8.min(n)..n]);
    let mut rest = &data[n..];
    while rest.len() >= 4 {
        let kind = u16::from_le_bytes([rest[0], rest[1]]) % 64 + 1; // the reader's valid kinds
        let len = (u16::from_le_bytes([rest[2], rest[3]]) as usize).min(rest.len() - 4);
        let payload = &rest[4..4 + len];
        let total = (16 + len + 7) & !7;
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out.resize(out.len() + total - 16 - len, 0);
        rest = &rest[4 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = meta::parse(data) {
        let _ = m.to_wall(u64::MAX);
        let _ = m.string(u32::MAX);
    }
    if let Some((&mode, rest)) = data.split_first() {
        if mode & 1 == 1 {
            let m = meta::parse(&framed(rest)).expect("a well-framed meta file always parses");
            assert_eq!(m.skipped_bytes, 0, "CRC-correct entries are never skipped: {:?}", m.problems);
            for a in [0, 1, u64::MAX / 2, u64::MAX] {
                let _ = m.to_wall(a);
            }
        }
    }
});
