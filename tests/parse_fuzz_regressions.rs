//! Regressions found by fuzzing `parse` (fuzz/): counters and clock anchors in a damaged meta
//! header can hold any value; sums and time conversions saturate instead of overflowing (which
//! panicked in checked builds and wrapped into nonsense in release builds).

mod common;

use ms_service_profiler::files::meta::{at, COUNTERS_AT};
use ms_service_profiler::{ffi, parse};

#[test]
fn fuzz_regression_child() {
    if std::env::var("MSP_FUZZREG_CHILD").is_err() {
        return;
    }
    assert_eq!(ffi::msp_init(), 1);
    let d = ffi::msp_intern(b"Execute".as_ptr() as _, 7);
    let f = ffi::msp_intern(b"forward".as_ptr() as _, 7);
    for i in 0..50 {
        assert!(ffi::msp_span(d, f, 1000 * i + 1, u64::MAX - i, std::ptr::null()));
        assert!(ffi::msp_event(d, d, u64::MAX - i, std::ptr::null()));
    }
    ffi::msp_shutdown();
}

#[test]
fn extreme_counters_and_anchors_saturate() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), "");
    let st =
        common::child("fuzz_regression_child", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_FUZZREG_CHILD", "1"), ("PROF_LOG_LEVEL", "ERROR")])
            .status()
            .unwrap();
    assert!(st.success());
    let sets = ms_service_profiler::reader::discover(&tmp.path().join("prof"));
    assert_eq!(sets.len(), 1);
    let meta = &sets[0].meta;
    let mut b = std::fs::read(meta).unwrap();
    for i in 2..=8 {
        b[COUNTERS_AT + 8 * i..COUNTERS_AT + 8 * i + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    }
    b[at::REALTIME..at::REALTIME + 8].copy_from_slice(&i64::MAX.to_le_bytes());
    std::fs::write(meta, &b).unwrap();
    // a second process with the same damage: the totals add up two u64::MAX values
    let dir = meta.parent().unwrap();
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        let name = f.file_name().into_string().unwrap();
        let copy = name.replacen(&sets[0].stem, &format!("{}-7", sets[0].stem), 1);
        std::fs::copy(f.path(), dir.join(copy)).unwrap();
    }
    let opts = parse::Options {
        input: tmp.path().join("prof"),
        output: tmp.path().join("out"),
        formats: vec![parse::Format::Db, parse::Format::Csv, parse::Format::Json, parse::Format::Perfetto],
        spans: vec![],
        timezone: None,
        jobs: 1,
        progress: false,
    };
    let s = parse::run(&opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.processes, 2);
    assert_eq!(s.report.dropped, u64::MAX, "saturated, not wrapped");
    let text = parse::summary_text(&s, &opts.output);
    assert!(text.contains(&format!("losses: {} dropped", u64::MAX)), "{text}");
    assert!(text.contains(&format!("shim errors: {} hook error(s)", u64::MAX)), "{text}");
    assert_eq!(s.losses.len(), 2);
}

/// A STRING entry with a huge id (found by the meta_reader target: 400 MB allocated for one
/// 24-byte entry) is ignored; ids up to the number of entries the file can hold are kept.
#[test]
fn huge_string_id_does_not_allocate() {
    use ms_service_profiler::files::meta::{entry, HEADER_BYTES, MAGIC, VERSION};
    let mut b = vec![0u8; HEADER_BYTES as usize];
    b[..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let mut put = |id: u32, s: &[u8]| {
        let payload = [&id.to_le_bytes()[..], s].concat();
        let total = (16 + payload.len() + 7) & !7;
        b.extend_from_slice(&(total as u32).to_le_bytes());
        b.extend_from_slice(&entry::STRING.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(&payload);
        b.resize(b.len() + total - 16 - payload.len(), 0);
    };
    put(1, b"Request");
    put(16_000_000, b"damage");
    let m = ms_service_profiler::reader::meta::parse(&b).unwrap();
    assert_eq!(m.string(1), "Request");
    assert_eq!(m.string(16_000_000), "<unknown>");
    assert!(m.strings.len() <= b.len() / 16, "{} slots for a {}-byte file", m.strings.len(), b.len());
}
