//! Loss accounting end to end: a process that overflows its ring (drop policy), writes records
//! larger than a chunk, and has hook and expression errors reported by the shim
//! (`msp_count_error`, as the Python shim does) — every loss is counted exactly, per process,
//! and shown by `parse` in its summary and in profiler.db's `losses` table; a second process
//! with no loss has a clean row and no summary line.

mod common;

use std::process::Command;

use ms_service_profiler::ffi;

/// Child: `MSP_LOSS_N` events of ~224 bytes, 3 oversize ones, 4 hook and 5 expression errors;
/// prints how many events were kept.
#[test]
fn loss_child() {
    let Ok(n) = std::env::var("MSP_LOSS_N") else { return };
    let n: u64 = n.parse().unwrap();
    assert_eq!(ffi::msp_init(), 1);
    let d = ffi::msp_intern(b"Loss".as_ptr() as _, 4);
    let mut kept = 0;
    for i in 0..n {
        let j = format!("{{\"seq\":{i},\"pad\":\"{}\"}}", "p".repeat(150));
        kept += ffi::msp_event_json(d, d, i + 1, j.as_ptr() as _, j.len()) as u64;
    }
    let big = format!("{{\"pad\":\"{}\"}}", "b".repeat(40 << 10));
    for _ in 0..3 {
        assert!(!ffi::msp_event_json(d, d, 1, big.as_ptr() as _, big.len()));
    }
    ffi::msp_count_error(1, 4);
    ffi::msp_count_error(2, 5);
    ffi::msp_shutdown();
    println!("KEPT {kept}");
}

fn run_child(cfg: &std::path::Path, n: u64) -> u64 {
    let out = common::child("loss_child", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_LOSS_N", &n.to_string()), ("PROF_LOG_LEVEL", "ERROR")])
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    s.split("KEPT ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_else(|| panic!("no KEPT line: {s}")).parse().unwrap()
}

#[test]
fn every_loss_is_counted_per_process_and_reported() {
    let tmp = common::tempdir();
    // 1 MiB segments, 64 MiB budget (the minimum), 16 KiB chunks: 400k records of 224 bytes overflow it.
    let cfg = common::write_config(tmp.path(), ",\n    \"ring_size_mb\": 1,\n    \"ring_total_mb\": 64,\n    \"ring_chunk_kb\": 16");
    let n = 400_000;
    let kept_a = run_child(&cfg, n);
    let kept_b = run_child(&cfg, 100);
    assert!(kept_a < n && kept_b == 100, "{kept_a} {kept_b}");
    let out = tmp.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_msserviceprofiler"))
        .args(["parse", "--format", "db", "--input-path"])
        .arg(tmp.path().join("prof"))
        .arg("--output-path")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains(&format!("losses: {} dropped, 0 overwritten, 6 oversize", n - kept_a)), "{text}");
    assert!(text.contains("shim errors: 8 hook error(s) (records lost), 10 attribute expression error(s)"), "{text}");
    let conn = rusqlite::Connection::open(out.join("profiler.db")).unwrap();
    let mut st = conn.prepare("SELECT records, committed, dropped, overwritten, oversize, hook_errors, expr_errors, torn_records, corrupt_chunks, clean, write_error FROM losses ORDER BY records DESC").unwrap();
    let rows: Vec<[i64; 10]> = st
        .query_map([], |r| {
            assert_eq!(r.get::<_, Option<String>>(10)?, None);
            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?])
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (ka, kb) = (kept_a as i64, kept_b as i64);
    // recovered == committed == kept; dropped == attempted - kept; every other loss exact.
    assert_eq!(rows, vec![[ka, ka, n as i64 - ka, 0, 3, 4, 5, 0, 0, 1], [kb, kb, 0, 0, 3, 4, 5, 0, 0, 1]]);
    // one summary line per process with a loss, saying what was lost
    assert_eq!(text.matches("  pid ").count(), 2, "{text}");
    assert!(
        text.contains(&format!(
            "{ka} recovered / {ka} committed; lost: {} dropped, 0 overwritten, 3 oversize, 4 hook error(s), 0 torn, 0 device; 5 expression error(s)",
            n - kept_a
        )),
        "{text}"
    );
}
