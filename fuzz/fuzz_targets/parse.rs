//! `msserviceprofiler parse` on arbitrary capture files: the input is split into one process's
//! meta file and its first ring segment (`u16 meta_len | meta | ring`), written into a fresh
//! run directory, and the full parse runs with every output format. It must never panic or
//! fail with anything but a clean error, and its read totals must be consistent.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use ms_service_profiler::parse::{run, Error, Format, Options};

fn workdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("msp-fuzz-parse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("in/0101-0000/Trace_Service")).unwrap();
    d
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (meta, ring) = data[2..].split_at(n);
    let d = workdir();
    let ts = d.join("in/0101-0000/Trace_Service");
    std::fs::write(ts.join("ms_service_fuzz-1.meta"), meta).unwrap();
    if !ring.is_empty() {
        std::fs::write(ts.join("ms_service_fuzz-1.000000.ring"), ring).unwrap();
    }
    let opts = Options {
        input: d.join("in"),
        output: d.join("out"),
        formats: vec![Format::Db, Format::Csv, Format::Json, Format::Perfetto],
        spans: vec![],
        timezone: None,
        jobs: 1,
        progress: false,
    };
    match run(&opts) {
        Ok(s) => {
            assert_eq!(s.processes, 1);
            assert!(s.report.records <= s.report.chunks.saturating_mul(1 << 27));
            let text = ms_service_profiler::parse::summary_text(&s, &opts.output);
            assert!(text.contains("losses:"));
        }
        Err(Error::NoInput(_)) => {}
        Err(e) => panic!("parse failed on a readable capture: {e}"),
    }
    let _ = std::fs::remove_dir_all(&d);
});
