//! Imported timelines in `parse`: a framework-profiler (torch) trace with clock anchors, and an
//! exported msprof timeline, next to a capture written by the real recorder. The torch trace
//! uses its own time base (offset by a known amount from the capture clock): after the merge its
//! ops must sit exactly where they were put relative to the service spans.

mod parse_support;

use ms_service_profiler::ffi;
use parse_support::*;
use serde_json::{json, Value};

const ME: &str = "import";
/// Torch time base = capture clock − this (ns).
const TORCH_OFF: u64 = 123_456_789_000;

fn id(s: &str) -> u32 {
    ffi::msp_intern(s.as_ptr() as *const _, s.len())
}

fn real_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

fn emit(prof: &std::path::Path) {
    ffi::msp_init();
    let base = mono_now();
    let t = |us: u64| base + us * 1000;
    let j = json!({"rid": [{"rid": "r1", "iter": 0, "type": 0, "num_scheduled_tokens": 3}], "type": 2}).to_string();
    assert!(ffi::msp_span_json(id("Execute"), id("modelExec"), t(1000), t(3000), j.as_ptr() as *const _, j.len()));
    let j = json!({"rid": ["r1"], "type": 2}).to_string();
    assert!(ffi::msp_span_json(id("Execute"), id("forward"), t(1100), t(2900), j.as_ptr() as *const _, j.len()));
    let pid = std::process::id();
    // torch: anchors at 500 µs and 5000 µs (window 10 µs, event 6 µs in the middle), an op at
    // 1500–1800 µs and a flow to a "GPU" event under another torch pid.
    let tus = |mono_ns: u64| (mono_ns - TORCH_OFF) as f64 / 1e3;
    let dir = prof.join("torch_prof").join(format!("{}-{pid}", hostname()));
    std::fs::create_dir_all(&dir).unwrap();
    let anchor = |k: u64, at: u64| {
        (
            json!({"name": format!("ms_service_profiler::clock_anchor#{k}"), "mono_before": t(at), "mono_after": t(at) + 10_000, "real_before": 0, "real_after": 0}),
            json!({"ph": "X", "cat": "user_annotation", "name": format!("ms_service_profiler::clock_anchor#{k}"), "pid": pid, "tid": pid, "ts": tus(t(at) + 2000), "dur": 6.0}),
        )
    };
    let (a0, e0) = anchor(0, 500);
    let (a1, e1) = anchor(1, 5000);
    let trace = json!({"schemaVersion": 1, "baseTimeNanoseconds": 1, "traceEvents": [
        {"ph": "M", "name": "process_name", "pid": pid, "args": {"name": "python"}},
        e0,
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": pid, "tid": pid, "ts": tus(t(1500)), "dur": 300.0, "args": {"External id": 7}},
        {"ph": "s", "cat": "ac2g", "name": "ac2g", "id": 7, "pid": pid, "tid": pid, "ts": tus(t(1500))},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": "stream 7", "ts": tus(t(1600)), "dur": 50.0},
        {"ph": "f", "cat": "ac2g", "name": "ac2g", "id": 7, "pid": 0, "tid": "stream 7", "ts": tus(t(1600)), "bp": "e"},
        e1
    ]});
    std::fs::write(dir.join("trace_0.json"), trace.to_string()).unwrap();
    std::fs::write(
        dir.join("clock_0.json"),
        json!({"pid": pid, "hostname": hostname(), "trace": "trace_0.json", "profiler": "torch", "anchors": [a0, a1]}).to_string(),
    )
    .unwrap();
    // msprof: epoch µs; one event at the wall time of 2000 µs; its pid collides with ours.
    let real = (real_now() as i64 + (t(2000) as i64 - mono_now() as i64)) as u64;
    let out = prof.join("PROF_000001_20261128").join("mindstudio_profiler_output");
    std::fs::create_dir_all(&out).unwrap();
    let ms = json!([
        {"ph": "M", "name": "process_name", "pid": pid, "args": {"name": "Ascend Hardware"}},
        {"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": 0}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": 3, "args": {"name": "Stream 3"}},
        {"ph": "X", "name": "MatMulV2", "pid": pid, "tid": 3, "ts": format!("{}.{:03}", real / 1000, real % 1000).parse::<f64>().unwrap(), "dur": 40.0, "cat": "Task"},
        {"ph": "s", "name": "HostToDevice", "id": "99", "pid": pid, "tid": 3, "ts": (real / 1000) as f64},
    ]);
    std::fs::write(out.join("msprof_20261128.json"), ms.to_string()).unwrap();
    std::fs::create_dir_all(prof.join("PROF_000002_20261128").join("device_0")).unwrap();
    ffi::msp_shutdown();
}

#[test]
fn import() {
    if std::env::var(CHILD).is_ok() {
        emit(std::path::Path::new(&std::env::var(PREFIX).unwrap()));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("prof");
    let cfg = config(tmp.path(), &prof);
    spawn(ME, "worker", &cfg, 0, prof.to_str().unwrap(), None);
    let out = tmp.path().join("out");
    let s = ms_service_profiler::parse::run(&options(&prof, &out)).unwrap();
    let notes = s.imports.join("\n");
    assert!(notes.contains("(6 events; aligned by 2 clock anchor(s), error ≤ 2.0 µs)"), "{notes}");
    assert!(notes.contains("imported msprof timeline") && notes.contains("(4 events)"), "{notes}");
    assert!(notes.contains("PROF_000002_20261128: no exported msprof timeline"), "{notes}");

    let tr: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(out.join("chrome_tracing.json")).unwrap()).unwrap();
    let find = |name: &str| tr.iter().find(|e| e["name"] == name && e["ph"] == "X").unwrap_or_else(|| panic!("no {name}"));
    let exec = find("modelExec");
    let (mm, gemm) = (find("aten::mm"), find("gemm"));
    let us = |e: &Value| e["ts"].as_f64().unwrap();
    // 500 µs / 600 µs after modelExec's start (read back as f64 epoch µs: ¼ µs resolution;
    // exact to the ns in profiler.db below).
    assert!((us(mm) - us(exec) - 500.0).abs() <= 0.5, "{} vs {}", us(mm), us(exec));
    assert!((us(gemm) - us(exec) - 600.0).abs() <= 0.5, "{} {}", us(gemm), us(exec));
    assert_eq!(mm["pid"], exec["pid"]);
    assert_eq!(mm["dur"], 300.0);
    let tname = |e: &Value| -> String {
        tr.iter().find(|m| m["ph"] == "M" && m["name"] == "thread_name" && m["pid"] == e["pid"] && m["tid"] == e["tid"]).unwrap()["args"]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let wpid = exec["pid"].as_u64().unwrap();
    assert_eq!(tname(mm), format!("Torch({wpid})"));
    assert_eq!(tname(gemm), "Torch 0/stream 7");
    assert!(!tr.iter().any(|e| e["ph"] == "M" && e["args"]["name"] == "python"), "torch's own metadata is replaced");
    let flow: Vec<&Value> = tr.iter().filter(|e| e["id"] == "7_torch1").collect();
    assert_eq!(flow.len(), 2);
    assert_eq!(flow[1]["tid"], gemm["tid"]);

    // msprof: ts kept (epoch µs), pid moved off the service pid, flow id suffixed.
    let k = find("MatMulV2");
    assert_eq!(k["pid"].as_u64().unwrap(), wpid + 300_000_000);
    assert!((us(k) - us(exec) - 1000.0).abs() < 200.0, "msprof event near the service span: {} vs {}", us(k), us(exec));
    assert!(tr.iter().any(|e| e["id"] == "99_2"));
    assert!(!tr.iter().any(|e| e["name"] == "process_sort_index" && e["pid"].as_u64() == Some(wpid + 300_000_000)));

    // profiler.db: imported slices on named tracks.
    let c = rusqlite::Connection::open(out.join("profiler.db")).unwrap();
    let n = |q: &str| -> i64 { c.query_row(q, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{q}: {e}")) };
    assert_eq!(n(&format!("SELECT COUNT(*) FROM slice s JOIN thread t ON s.track_id = t.track_id WHERE s.name = 'aten::mm' AND t.tid = 'Torch({wpid})'")), 1);
    assert_eq!(n("SELECT COUNT(*) FROM slice s JOIN thread t ON s.track_id = t.track_id WHERE s.name = 'MatMulV2' AND t.tid = 'Stream 3'"), 1);
    let mm_ts = n("SELECT timestamp FROM slice WHERE name = 'aten::mm'");
    let ex_ts = n("SELECT timestamp FROM slice WHERE name = 'modelExec'");
    assert!((mm_ts - ex_ts - 500_000).abs() <= 1, "{mm_ts} {ex_ts}");
    let gemm_ts = n("SELECT timestamp FROM slice WHERE name = 'gemm'");
    assert!((gemm_ts - ex_ts - 600_000).abs() <= 1, "{gemm_ts} {ex_ts}");
}
