//! Shared by the parse tests: writing capture files with the REAL recorder from child processes
//! (the recorder is a per-process singleton), and the synthetic vLLM-like scenario whose TTFT,
//! queue wait, batch composition and KV usage are known by construction.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ms_service_profiler::ffi;
use serde_json::{json, Value};

/// Env var selecting child mode: `<role>` (api, engine, worker).
pub const CHILD: &str = "MSP_PARSE_TEST_CHILD";
/// Env var: the monotonic base time (ns) every child offsets its records from.
pub const BASE: &str = "MSP_PARSE_TEST_BASE";
/// Env var: request-id prefix (distinct per simulated host).
pub const PREFIX: &str = "MSP_PARSE_TEST_PREFIX";
/// Env var: hostname override written as process meta.
pub const HOST: &str = "MSP_PARSE_TEST_HOST";

/// CLOCK_MONOTONIC now, ns.
pub fn mono_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Write a config enabling capture into `prof_dir`; returns its path.
pub fn config(dir: &Path, prof_dir: &Path) -> PathBuf {
    let p = dir.join("ms_service_profiler_config.json");
    std::fs::write(&p, json!({"enable": 1, "prof_dir": prof_dir.to_str().unwrap(), "ring_size_mb": 1, "ring_total_mb": 4, "ring_chunk_kb": 16}).to_string())
        .unwrap();
    p
}

/// Run the scenario's `role` in a child process (the current test binary re-executed, running
/// only `test_name`, which must call [`child_main`]).
pub fn spawn(test_name: &str, role: &str, cfg: &Path, base: u64, prefix: &str, host: Option<&str>) {
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe);
    c.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD, role)
        .env(BASE, base.to_string())
        .env(PREFIX, prefix)
        .env("SERVICE_PROF_CONFIG_PATH", cfg)
        .env("PROF_LOG_LEVEL", "ERROR");
    match host {
        Some(h) => c.env(HOST, h),
        None => c.env_remove(HOST),
    };
    let out = c.output().unwrap();
    assert!(out.status.success(), "child {role} failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Run the whole scenario (API server, EngineCore, worker: three processes).
pub fn capture(test_name: &str, cfg: &Path, prefix: &str, host: Option<&str>) {
    let base = mono_now();
    for role in ["api", "engine", "worker"] {
        spawn(test_name, role, cfg, base, prefix, host);
    }
}

struct Emit {
    base: u64,
}

fn id(s: &str) -> u32 {
    ffi::msp_intern(s.as_ptr() as *const _, s.len())
}

impl Emit {
    fn t(&self, us: u64) -> u64 {
        self.base + us * 1000
    }
    fn event(&self, domain: &str, name: &str, us: u64, attrs: Value) {
        let j = attrs.to_string();
        assert!(ffi::msp_event_json(id(domain), id(name), self.t(us), j.as_ptr() as *const _, j.len()));
    }
    fn span(&self, domain: &str, name: &str, a: u64, b: u64, attrs: Value) {
        let j = attrs.to_string();
        assert!(ffi::msp_span_json(id(domain), id(name), self.t(a), self.t(b), j.as_ptr() as *const _, j.len()));
    }
}

fn meta(k: &str, v: &str) {
    ffi::msp_meta(k.as_ptr() as *const _, k.len(), v.as_ptr() as *const _, v.len());
}

/// Child entry: does nothing unless [`CHILD`] is set; then emits its role's records and shuts
/// the recorder down.
pub fn child_main() {
    let Ok(role) = std::env::var(CHILD) else { return };
    let base: u64 = std::env::var(BASE).unwrap().parse().unwrap();
    let p = std::env::var(PREFIX).unwrap();
    ffi::msp_init();
    if let Ok(h) = std::env::var(HOST) {
        meta("hostname", &h);
    }
    let e = Emit { base };
    // API ids and engine-internal ids (`<id>-<8 hex>`).
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let (ea, eb) = (format!("{a}-1234abcd"), format!("{b}-5678ef01"));
    let dicts = |iter: u64, ty: u64, ta: u64, tb: u64| {
        json!([
            {"rid": ea, "iter": iter, "type": ty, "num_scheduled_tokens": ta, "num_prompt_tokens": 7, "num_computed_tokens": 0},
            {"rid": eb, "iter": iter, "type": ty, "num_scheduled_tokens": tb, "num_prompt_tokens": 5, "num_computed_tokens": 0}
        ])
    };
    match role.as_str() {
        "api" => {
            meta("processRole", "api_server");
            e.event("Engine", "httpReq", 0, json!({"rid": a, "type": 0}));
            e.event("Engine", "tokenize", 10, json!({"rid": a, "type": 0}));
            e.event("Engine", "httpReq", 200, json!({"rid": b, "type": 0}));
            e.event("Engine", "tokenize", 210, json!({"rid": b, "type": 0}));
            e.event("Engine", "detokenize", 3600, json!({"rid": [ea, eb], "type": 0}));
            e.event("Engine", "detokenize", 5400, json!({"rid": [ea, eb], "type": 0}));
            e.event("Engine", "httpRes", 7100, json!({"rid": ea, "recvTokenSize=": 7, "replyTokenSize=": 3, "type": 0}));
            e.event("Engine", "detokenize", 7150, json!({"rid": [ea, eb], "type": 0}));
            e.event("Engine", "httpRes", 7200, json!({"rid": b, "recvTokenSize=": 5, "replyTokenSize=": 3, "type": 0}));
        }
        "engine" => {
            meta("processRole", "EngineCore");
            meta("dpRankId", "0");
            e.event("Schedule", "Enqueue", 100, json!({"rid": ea, "QueueSize=": 1, "scope#QueueName": "WAITING", "type": 0}));
            e.event("Schedule", "Enqueue", 300, json!({"rid": eb, "QueueSize=": 2, "scope#QueueName": "WAITING", "type": 0}));
            e.event("Schedule.KVCache", "CacheHitRate", 1200, json!({"rid": ea, "hitCache": 0.5, "type": 0}));
            // Step 1: prefill of both.
            e.event("Schedule", "Dequeue", 1400, json!({"rid": [ea, eb], "QueueSize=": 0, "scope#QueueName": "WAITING", "type": 0}));
            e.event("Schedule", "Enqueue", 1400, json!({"rid": [ea, eb], "QueueSize=": 2, "scope#QueueName": "RUNNING", "type": 0}));
            e.event(
                "Schedule.KVCache",
                "KVCacheStatus",
                1450,
                json!({"rid": [ea, eb], "TotalBlocks=": 100, "UsedBlocks=": 10, "FreeBlocks=": 90, "UsagePercent=": 0.1, "AllocatedBlocks=": 10, "type": 0}),
            );
            e.span("Schedule", "batchFrameworkProcessing", 1000, 1500, json!({"rid": dicts(0, 0, 7, 5), "batch_type": "Prefill", "type": 2}));
            e.span("Execute", "modelExec", 1500, 3500, json!({"rid": dicts(0, 0, 7, 5), "batch_type": "Prefill", "batch_size": 12, "type": 2}));
            // Step 2: decode.
            e.event(
                "Schedule.KVCache",
                "KVCacheStatus",
                4250,
                json!({"rid": [ea, eb], "TotalBlocks=": 100, "UsedBlocks=": 12, "FreeBlocks=": 88, "UsagePercent=": 0.12, "AllocatedBlocks=": 2, "type": 0}),
            );
            e.span("Schedule", "batchFrameworkProcessing", 4000, 4300, json!({"rid": dicts(1, 1, 1, 1), "batch_type": "Decode", "type": 2}));
            e.span("Execute", "modelExec", 4300, 5300, json!({"rid": dicts(1, 1, 1, 1), "batch_type": "Decode", "batch_size": 2, "type": 2}));
            // Step 3: decode; a finishes.
            e.event("Schedule", "Dequeue", 6150, json!({"rid": [ea], "QueueSize=": 1, "scope#QueueName": "RUNNING", "type": 0}));
            e.event(
                "Schedule.KVCache",
                "KVCacheStatus",
                6150,
                json!({"rid": [ea, eb], "TotalBlocks=": 100, "UsedBlocks=": 8, "FreeBlocks=": 92, "UsagePercent=": 0.08, "AllocatedBlocks=": -4, "type": 0}),
            );
            e.span("Schedule", "batchFrameworkProcessing", 6000, 6200, json!({"rid": dicts(2, 1, 1, 1), "batch_type": "Decode", "type": 2}));
            e.span("Execute", "modelExec", 6200, 7000, json!({"rid": dicts(2, 1, 1, 1), "batch_type": "Decode", "batch_size": 2, "type": 2}));
            e.event("Schedule.KVCache", "Free", 7050, json!({"rid": ea, "deviceBlock=": 96, "UsagePercent=": 0.04, "type": 0}));
        }
        "worker" => {
            meta("processRole", "worker");
            meta("dpRankId", "0");
            e.span("Execute", "forward", 1600, 3400, json!({"rid": [ea, eb], "type": 2}));
            e.span("Execute", "sample", 3300, 3390, json!({"type": 2}));
            e.span("Execute", "forward", 4400, 5200, json!({"rid": [ea, eb], "type": 2}));
            e.span("Execute", "forward", 6300, 6900, json!({"rid": [ea, eb], "type": 2}));
        }
        other => panic!("unknown role {other}"),
    }
    ffi::msp_shutdown();
}

/// Read a CSV written by the parser into rows of cells (simple: no quoted newlines).
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(split_csv).collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, q) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => q = !q,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Columns `names` of every data row of a CSV (header checked to contain them).
pub fn columns(rows: &[Vec<String>], names: &[&str]) -> Vec<Vec<String>> {
    let idx: Vec<usize> = names.iter().map(|n| rows[0].iter().position(|h| h == n).unwrap_or_else(|| panic!("no column {n} in {:?}", rows[0]))).collect();
    rows[1..].iter().map(|r| idx.iter().map(|&i| r[i].clone()).collect()).collect()
}

/// Parse options for `input` → `output` with every format.
pub fn options(input: &Path, output: &Path) -> ms_service_profiler::parse::Options {
    use ms_service_profiler::parse::{Format, Options};
    Options {
        input: input.into(),
        output: output.into(),
        formats: vec![Format::Db, Format::Csv, Format::Json, Format::Perfetto],
        spans: vec!["sample".into()],
        timezone: Some(0),
        jobs: 2,
        progress: false,
    }
}
