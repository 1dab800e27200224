//! End-to-end parse throughput (records/s): a vLLM-shaped capture is written by the real
//! recorder from two child processes (API server, EngineCore+worker), then `parse::run` is timed
//! with every format and with CSV only.
//!
//! `MSP_BENCH_RECORDS` sets the approximate record count (default 200 000).
//! `MSP_BENCH_KEEP=<dir>` writes the capture into `<dir>` and exits (for `/usr/bin/time -v`
//! measurements of the CLI).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use ms_service_profiler::ffi;
use ms_service_profiler::parse::{self, Format, Options};
use serde_json::json;

const CHILD: &str = "MSP_BENCH_CHILD";

fn id(s: &str) -> u32 {
    ffi::msp_intern(s.as_ptr() as *const _, s.len())
}

fn event(d: u32, n: u32, t: u64, j: &str) {
    ffi::msp_event_json(d, n, t, j.as_ptr() as *const _, j.len());
}

fn span(d: u32, n: u32, a: u64, b: u64, j: &str) {
    ffi::msp_span_json(d, n, a, b, j.as_ptr() as *const _, j.len());
}

/// Write `steps` scheduler steps of a batch-8 service, as `role`.
fn child(role: &str, steps: u64) {
    ffi::msp_init();
    let base = ffi::msp_now();
    let (eng, sch, kvd, exe) = (id("Engine"), id("Schedule"), id("Schedule.KVCache"), id("Execute"));
    let names: Vec<u32> = ["httpReq", "tokenize", "detokenize", "httpRes", "Enqueue", "Dequeue", "KVCacheStatus", "batchFrameworkProcessing", "modelExec", "forward"].iter().map(|s| id(s)).collect();
    for s in 0..steps {
        let t = base + s * 10_000_000;
        let live: Vec<u64> = (s.saturating_sub(15)..=s).collect();
        let rid = |r: u64| format!("chatcmpl-{r:08}-0123abcd");
        match role {
            "api" => {
                event(eng, names[0], t, &json!({"rid": format!("chatcmpl-{s:08}"), "type": 0}).to_string());
                event(eng, names[1], t + 1000, &json!({"rid": format!("chatcmpl-{s:08}"), "type": 0}).to_string());
                event(eng, names[2], t + 9_000_000, &json!({"rid": live.iter().map(|&r| rid(r)).collect::<Vec<_>>(), "type": 0}).to_string());
                if s >= 15 {
                    event(eng, names[3], t + 9_500_000, &json!({"rid": rid(s - 15), "recvTokenSize=": 128, "replyTokenSize=": 16, "type": 0}).to_string());
                }
            }
            _ => {
                event(sch, names[4], t, &json!({"rid": rid(s), "QueueSize=": 1, "scope#QueueName": "WAITING", "type": 0}).to_string());
                event(sch, names[5], t + 500_000, &json!({"rid": [rid(s)], "QueueSize=": 0, "scope#QueueName": "WAITING", "type": 0}).to_string());
                let dicts: Vec<_> = live.iter().map(|&r| json!({"rid": rid(r), "iter": s - r, "type": (s != r) as u8, "num_scheduled_tokens": if s == r { 128 } else { 1 }, "num_prompt_tokens": 128, "num_computed_tokens": 0})).collect();
                event(kvd, names[6], t + 900_000, &json!({"rid": live.iter().map(|&r| rid(r)).collect::<Vec<_>>(), "TotalBlocks=": 1000, "UsedBlocks=": 100, "FreeBlocks=": 900, "UsagePercent=": 0.1, "AllocatedBlocks=": 1, "type": 0}).to_string());
                let body = json!({"rid": dicts, "batch_type": "Prefill,Decode", "type": 2}).to_string();
                span(sch, names[7], t + 400_000, t + 1_000_000, &body);
                span(exe, names[8], t + 1_000_000, t + 8_000_000, &body);
                span(exe, names[9], t + 1_100_000, t + 7_900_000, &json!({"rid": live.iter().map(|&r| rid(r)).collect::<Vec<_>>(), "type": 2}).to_string());
            }
        }
    }
    ffi::msp_shutdown();
}

fn capture(dir: &Path, records: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("config.json");
    let prof = dir.join("prof");
    std::fs::write(&cfg, json!({"enable": 1, "prof_dir": prof.to_str().unwrap(), "ring_size_mb": 64, "ring_total_mb": 4096}).to_string()).unwrap();
    // ≈ 9 records per step across both processes.
    let steps = records / 9;
    let exe = std::env::current_exe().unwrap();
    let kids: Vec<_> = ["api", "engine"].iter().map(|r| Command::new(&exe).env(CHILD, format!("{r}:{steps}")).env("SERVICE_PROF_CONFIG_PATH", &cfg).env("PROF_LOG_LEVEL", "ERROR").spawn().unwrap()).collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
}

fn main() {
    if let Ok(c) = std::env::var(CHILD) {
        let (role, steps) = c.split_once(':').unwrap();
        child(role, steps.parse().unwrap());
        return;
    }
    let records: u64 = std::env::var("MSP_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    if let Ok(dir) = std::env::var("MSP_BENCH_KEEP") {
        capture(Path::new(&dir), records);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    capture(tmp.path(), records);
    let prof = tmp.path().join("prof");
    let out = tmp.path().join("out");
    let opts = |formats: Vec<Format>| Options { input: prof.clone(), output: out.clone(), formats, spans: Vec::new(), timezone: None, jobs: 0, progress: false };
    let n = parse::run(&opts(vec![Format::Csv])).unwrap().records;
    eprintln!("capture: {n} records");
    let mut c = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(20)).configure_from_args();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(n));
    g.bench_function("csv", |b| b.iter(|| parse::run(&opts(vec![Format::Csv])).unwrap()));
    g.bench_function("json", |b| b.iter(|| parse::run(&opts(vec![Format::Json])).unwrap()));
    g.bench_function("db_csv_json", |b| b.iter(|| parse::run(&opts(vec![Format::Db, Format::Csv, Format::Json])).unwrap()));
    g.finish();
    c.final_summary();
}
