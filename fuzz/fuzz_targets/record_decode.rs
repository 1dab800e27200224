//! The record decoder on arbitrary bytes, as the reader walks a chunk: decode, move on by the
//! returned size, stop at the first error. The first record's 16-bit check is repaired so the
//! fuzzer reaches the body validation (rids, attributes, JSON, padding) instead of stopping at
//! the check. Every accessor of a decoded record is exercised, and the JSON rendering with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ms_service_profiler::reader::{json, ProcessMeta};
use ms_service_profiler::record::{check16, decode, ALIGN, FIXED};

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    if buf.len() >= FIXED {
        let head = u64::from_le_bytes(buf[..8].try_into().unwrap());
        let size = (head & 0xffff_ffff) as usize;
        if size >= FIXED && size % ALIGN == 0 && size <= buf.len() {
            let check = check16(size as u32, (head >> 32) as u8, (head >> 40) as u8, &buf[8..size]) as u64;
            let head = (head & 0x0000_ffff_ffff_ffff) | check << 48;
            buf[..8].copy_from_slice(&head.to_le_bytes());
        }
    }
    let meta = ProcessMeta::default();
    let mut pos = 0;
    while pos < buf.len() {
        let Ok((v, n)) = decode(&buf[pos..]) else { break };
        assert!(n >= FIXED && n % ALIGN == 0 && pos + n <= buf.len(), "size {n} at {pos} of {}", buf.len());
        let _ = v.rids().count();
        let _ = v.attrs().count();
        let _ = v.json();
        let _ = v.metric_value();
        let _ = json::record(&meta, &v);
        pos += n;
    }
});
