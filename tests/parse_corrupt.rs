//! Damaged inputs: flipped bytes in a ring, a truncated ring, a garbage meta file. The parse
//! still succeeds, keeps what is intact and reports what it skipped.

mod parse_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use parse_support::*;

const ME: &str = "corrupt";

fn files(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn corrupt() {
    child_main();
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("prof");
    let cfg = config(tmp.path(), &prof);
    capture(ME, &cfg, "c-", None);
    let rings = files(&prof, ".ring");
    // Engine ring: flip a byte inside the second decode step's record.
    let mut flipped = false;
    for r in &rings {
        let mut data = std::fs::read(r).unwrap();
        if let Some(i) = find(&data, b"\"UsedBlocks=\":12") {
            data[i + 14] ^= 0x5a;
            std::fs::write(r, &data).unwrap();
            flipped = true;
        }
    }
    assert!(flipped);
    // Worker ring: cut inside its data (the forward records).
    for r in &rings {
        let data = std::fs::read(r).unwrap();
        if let Some(i) = find(&data, b"\"type\":2") {
            if data.windows(6).filter(|w| w == b"\"rid\":").count() == 3 {
                std::fs::write(r, &data[..i + 200]).unwrap();
            }
        }
    }
    // Worker meta: damage the entry holding the interned name "sample".
    for m in files(&prof, ".meta") {
        let mut data = std::fs::read(&m).unwrap();
        if let Some(i) = find(&data, b"sample") {
            data[i] ^= 0x20;
            std::fs::write(&m, &data).unwrap();
        }
    }
    // A garbage meta file next to the real ones.
    let dir = files(&prof, ".meta")[0].parent().unwrap().to_path_buf();
    std::fs::write(dir.join("ms_service_ghost-1.meta"), b"not a meta file at all").unwrap();

    let out = tmp.path().join("out");
    let s = ms_service_profiler::parse::run(&options(&prof, &out)).unwrap();
    assert_eq!(s.processes, 3);
    assert_eq!(s.unreadable.len(), 1, "{:?}", s.unreadable);
    assert!(s.report.corrupt_chunks >= 1, "{:?}", s.report);
    assert!(s.records < 29 && s.records >= 9 + 6, "{}", s.records);
    assert!(s.report.problems.iter().any(|p| p.contains("meta log")), "{:?}", s.report.problems);
    // The API process is intact: both requests still have their token counts and exec time.
    let req = read_csv(&out.join("request.csv"));
    let cols = columns(&req, &["http_rid", "recv_token_size", "execution_time(ms)"]);
    assert_eq!(cols, vec![vec!["c-a", "7", "7.100"], vec!["c-b", "5", "7.000"]]);
    // The first step survived the flip (it precedes the damage in the chunk).
    let b = read_csv(&out.join("batch.csv"));
    assert_eq!(b[1][0], "batchFrameworkProcessing");
    serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(out.join("chrome_tracing.json")).unwrap()).unwrap();

    // The CLI says what it skipped and exits 0.
    let r = Command::new(env!("CARGO_BIN_EXE_msserviceprofiler"))
        .args(["parse", "--input-path"])
        .arg(&prof)
        .arg("--output-path")
        .arg(tmp.path().join("o2"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    let text = format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert!(text.contains("corrupt chunk") && text.contains("skipped unreadable"), "{text}");
}
