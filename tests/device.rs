//! The native device path against stand-in CANN libraries (tests/cann_stub/*.c, built here with
//! `cc`): discovery through ASCEND_HOME_PATH, MSPTI records into the ring and back through the
//! reader, filters, dropped counts, the ACL prof call sequence, mstx mirroring, usage sampling,
//! and host-only capture when CANN is absent or incomplete. Each case runs in a child process
//! (the libraries are loaded once per process).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ms_service_profiler::ffi;
use serde_json::Value;

/// Build stub `name` (tests/cann_stub/<name>.c) into `<root>/lib64/lib<name>.so`.
fn stub(root: &Path, name: &str, defines: &[&str]) -> PathBuf {
    let dir = root.join("lib64");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("lib{name}.so"));
    let src = format!("{}/tests/cann_stub/{name}.c", env!("CARGO_MANIFEST_DIR"));
    let st = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-std=gnu11"])
        .args(defines)
        .arg(format!("-Wl,-soname,lib{name}.so"))
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("-lpthread")
        .status()
        .expect("cc");
    assert!(st.success(), "cc {src} failed");
    out
}

/// Child mode: start capture from the config, wait for `MSP_DEVICE_CHILD` to appear in the stub
/// log, record one host span (and, with `MSP_FORWARD_AROUND_EMIT`, a modelExec and a forward around
/// the stand-in's records), linger, shut down.
#[test]
fn device_child() {
    let Ok(wait) = std::env::var("MSP_DEVICE_CHILD") else { return };
    assert_eq!(ffi::msp_init(), 1);
    let cpu0 = cpu_ns();
    let log = std::env::var("CANN_STUB_LOG").unwrap_or_default();
    let t = Instant::now();
    while !wait.is_empty() && !std::fs::read_to_string(&log).unwrap_or_default().contains(&wait) {
        assert!(t.elapsed() < Duration::from_secs(10), "stub log never showed {wait:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(60)); // one control tick: the device path acts on what it saw
    if let Some(bit) = std::env::var("MSP_WAIT_STATE_BIT").ok().and_then(|v| v.parse::<u64>().ok()) {
        while unsafe { *ffi::msp_state_word() } & bit == 0 {
            assert!(t.elapsed() < Duration::from_secs(10), "state bit {bit} never set");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if let Some(n) = std::env::var("MSP_EXPECT_RECORDS").ok().and_then(|v| v.parse::<u64>().ok()) {
        // Measure: from the first record's timestamp to all of them being in the ring.
        let base: u64 = std::fs::read_to_string(&log).unwrap().lines().find_map(|l| l.strip_prefix("emit base=")?.parse().ok()).unwrap();
        let mut k = ffi::MspCounters::default();
        while {
            ffi::msp_counters(&mut k);
            k.records_written < n
        } {
            assert!(t.elapsed() < Duration::from_secs(30), "only {} of {n} records written", k.records_written);
            std::thread::sleep(Duration::from_millis(1));
        }
        let ms = (ffi::msp_now() - base) as f64 / 1e6;
        let cpu = (cpu_ns() - cpu0) as f64;
        eprintln!(
            "MEASURE {n} MSPTI records decoded, handed off and written: {ms:.1} ms wall (incl. up to 50 ms counter publishing), process CPU {:.0} ns/record",
            cpu / n as f64
        );
    }
    let d = ffi::msp_intern(b"Execute".as_ptr() as _, 7);
    let n = ffi::msp_intern(b"forward".as_ptr() as _, 7);
    if let Some(len) = std::env::var("MSP_FORWARD_AROUND_EMIT").ok().and_then(|v| v.parse::<u64>().ok()) {
        // A batch (modelExec) and its forward pass enclosing what the stand-in emitted: from just
        // before its base to base + len, with the attributes vLLM's hooks give them.
        let base: u64 = std::fs::read_to_string(&log).unwrap().lines().find_map(|l| l.strip_prefix("emit base=")?.parse().ok()).unwrap();
        let exec = ffi::msp_intern(b"modelExec".as_ptr() as _, 9);
        let batch = r#"{"rid": [{"rid": "r1", "iter": 0, "type": 0, "num_scheduled_tokens": 4}], "batch_type": "Prefill", "type": 2}"#;
        assert!(ffi::msp_span_json(d, exec, base - 2000, base + len + 1000, batch.as_ptr() as _, batch.len()));
        let fwd = r#"{"rid": ["r1"], "type": 2}"#;
        assert!(ffi::msp_span_json(d, n, base - 1000, base + len, fwd.as_ptr() as _, fwd.len()));
    }
    let now = ffi::msp_now();
    assert!(ffi::msp_span(d, n, now - 1000, now, std::ptr::null()));
    if std::env::var_os("MSP_RESTART").is_some() {
        // Stop and start capture through the API: the device path follows both transitions.
        let log_len = |l: &str| std::fs::read_to_string(l).unwrap_or_default().lines().count();
        let before = log_len(&log);
        ffi::msp_stop();
        while log_len(&log) == before {
            assert!(t.elapsed() < Duration::from_secs(10), "no device stop seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100));
        ffi::msp_start();
        std::thread::sleep(Duration::from_millis(150));
    }
    let linger = std::env::var("MSP_LINGER_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    std::thread::sleep(Duration::from_millis(linger));
    if std::env::var_os("MSP_LATE_SPAN").is_some() {
        let late = ffi::msp_intern(b"late".as_ptr() as _, 4);
        let now = ffi::msp_now();
        assert!(ffi::msp_span(d, late, now - 1000, now, std::ptr::null()));
    }
    ffi::msp_shutdown();
}

/// CPU time of the whole process (all threads), ns.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Case {
    tmp: tempfile::TempDir,
    cann: PathBuf,
    log: PathBuf,
}

impl Case {
    fn new() -> Case {
        let tmp = common::tempdir();
        let cann = tmp.path().join("cann");
        std::fs::create_dir_all(cann.join("lib64")).unwrap();
        let log = tmp.path().join("stub.log");
        Case { tmp, cann, log }
    }

    /// Run the child with config keys `extra` and environment `env`.
    fn run(&self, extra: &str, wait: &str, env: &[(&str, &str)]) -> Output {
        let cfg = common::write_config(self.tmp.path(), extra);
        let mut all = vec![
            ("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()),
            ("ASCEND_HOME_PATH", self.cann.to_str().unwrap()),
            ("CANN_STUB_LOG", self.log.to_str().unwrap()),
            ("MSP_DEVICE_CHILD", wait),
        ];
        all.extend_from_slice(env);
        let mut c = common::child("device_child", &all);
        c.env_remove("LD_PRELOAD")
            .env_remove("ASCEND_TOOLKIT_HOME")
            .env_remove("PROFILER_SAMPLECONFIG")
            .env_remove("PROFILING_MODE")
            .env_remove("PROF_LOG_LEVEL");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn records(&self) -> (Vec<Value>, ms_service_profiler::reader::Report) {
        common::read_all(&self.tmp.path().join("prof"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn in_domain<'a>(recs: &'a [Value], d: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["domain"] == d).collect()
}

#[test]
fn mspti_records_reach_the_ring_filtered_on_the_ring_clock() {
    let c = Case::new();
    let lib = stub(&c.cann, "mspti", &[]);
    let extra = r#", "acl_task_time": 2, "api_filter": "aclnn", "kernel_filter": "MatMul;Cast""#;
    let out = c.run(extra, "emitted", &[("LD_PRELOAD", lib.to_str().unwrap())]);
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("[WARNING]") || l.contains("[ERROR]")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("MSPTI dropped 7 device records"), "{err}");

    // The protocol: subscribe, callbacks, the timestamp callback before any kind, four kinds, stop.
    let log = c.log();
    let calls: Vec<&str> = log.lines().filter(|l| !l.starts_with("emit")).collect();
    assert_eq!(
        calls,
        [
            "msptiSubscribe",
            "msptiActivityRegisterCallbacks",
            "msptiActivityRegisterTimestampCallback",
            "msptiActivityEnable 3",
            "msptiActivityEnable 2",
            "msptiActivityEnable 9",
            "msptiActivityEnable 1",
            "msptiActivityDisable 3",
            "msptiActivityDisable 2",
            "msptiActivityDisable 9",
            "msptiActivityDisable 1",
            "msptiUnsubscribe"
        ]
    );
    let base: u64 = log.lines().find_map(|l| l.strip_prefix("emit base=")).unwrap().parse().unwrap();

    let (recs, report) = c.records();
    assert_eq!(report.unclean, 0);
    let api = in_domain(&recs, "Api");
    assert_eq!(api.len(), 2, "api_filter keeps aclnn* only: {api:?}");
    let pid = recs[0]["pid"].as_u64().unwrap();
    for (i, (r, name)) in api.iter().zip(["aclnnMatmul", "aclnnAdd"]).enumerate() {
        let i = i as u64;
        assert_eq!(r["kind"], "span");
        assert_eq!(r["name"], name);
        assert_eq!(r["mono_ns"], base + i * 1000, "device times are on the ring clock, unshifted");
        assert_eq!(r["dur_ns"], 400);
        assert_eq!(r["tid"], 4242 + i);
        assert_eq!(r["attrs"], serde_json::json!({"correlationId": 100 + i, "pid": pid}));
    }
    let k = in_domain(&recs, "Kernel");
    assert_eq!(k.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["MatMulV2", "Cast"], "kernel_filter; no-timestamp records skipped");
    assert_eq!(k[0]["mono_ns"], base + 100);
    assert_eq!(k[0]["dur_ns"], 300);
    assert_eq!(k[0]["tid"], 0);
    assert_eq!(k[0]["attrs"], serde_json::json!({"deviceId": 3, "streamId": 7, "correlationId": 100, "type": "KERNEL_AICORE"}));
    assert_eq!(k[1]["attrs"]["correlationId"], 102);
    let comm = in_domain(&recs, "Communication");
    assert_eq!(comm.len(), 1);
    assert_eq!(comm[0]["name"], "hcom_allReduce_");
    assert_eq!((comm[0]["mono_ns"].as_u64().unwrap(), comm[0]["dur_ns"].as_u64().unwrap()), (base + 5000, 2000));
    assert_eq!(
        comm[0]["attrs"],
        serde_json::json!({"deviceId": 3, "streamId": 9, "correlationId": 200, "dataType": "FP16", "count": 4096, "commName": "hccl_world_group", "algType": "RING"})
    );
    let mstx = in_domain(&recs, "Mstx");
    assert_eq!(mstx.len(), 1, "start and end markers pair into one span");
    assert_eq!(mstx[0]["name"], "user_range");
    assert_eq!((mstx[0]["mono_ns"].as_u64().unwrap(), mstx[0]["dur_ns"].as_u64().unwrap()), (base + 8000, 1000));
    assert_eq!(mstx[0]["attrs"], serde_json::json!({"pid": pid, "tid": 4242, "markerDomain": "myDomain"}));

    // MSPTI's dropped count: one event and the meta-file counter.
    let ev = in_domain(&recs, "Device");
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0]["kind"].as_str(), ev[0]["name"].as_str()), (Some("event"), Some("msptiDropped")));
    assert_eq!(ev[0]["attrs"]["count"], 7);
    assert_eq!(report.device_dropped, 7);

    // The host span is still there, and nothing was mirrored to mstx in this mode.
    assert_eq!(in_domain(&recs, "Execute").len(), 1);
    assert!(!err.contains("mstx"));
}

#[test]
fn mspti_bulk_records_are_all_kept() {
    const N: u64 = 200_000;
    let c = Case::new();
    let lib = stub(&c.cann, "mspti", &[]);
    let n = N.to_string();
    let expect = (N + 2 + 2 + 1 + 1 + 1).to_string(); // bulk, 2 APIs, 2 kernels, comm, marker, drop event
    let env = [("LD_PRELOAD", lib.to_str().unwrap()), ("CANN_STUB_KERNELS", n.as_str()), ("MSP_EXPECT_RECORDS", expect.as_str())];
    let out = c.run(r#", "acl_task_time": 2, "api_filter": "aclnn", "kernel_filter": "MatMul;Cast;bulk""#, "emitted", &env);
    let err = stderr(&out);
    eprintln!("{}", err.lines().find(|l| l.starts_with("MEASURE")).unwrap_or(""));
    let (recs, report) = c.records();
    let bulk: Vec<&Value> = recs.iter().filter(|r| r["domain"] == "Kernel" && r["name"].as_str().unwrap().starts_with("bulk_")).collect();
    assert_eq!(bulk.len() as u64, N, "every record of every buffer is kept");
    assert_eq!(report.device_dropped, 7, "no loss of our own");
    let corr: Vec<u64> = bulk.iter().map(|r| r["attrs"]["correlationId"].as_u64().unwrap()).collect();
    assert!(corr.windows(2).all(|w| w[1] == w[0] + 1) && corr[0] == 1000, "in order, none twice");
}

#[test]
fn mspti_follows_capture_off_and_on() {
    let c = Case::new();
    let lib = stub(&c.cann, "mspti", &[]);
    c.run(r#", "acl_task_time": 2"#, "emitted", &[("LD_PRELOAD", lib.to_str().unwrap()), ("MSP_RESTART", "1")]);
    let log = c.log();
    let one = [
        "msptiSubscribe",
        "msptiActivityRegisterCallbacks",
        "msptiActivityRegisterTimestampCallback",
        "msptiActivityEnable 3",
        "msptiActivityEnable 2",
        "msptiActivityEnable 9",
        "msptiActivityEnable 1",
        "msptiActivityDisable 3",
        "msptiActivityDisable 2",
        "msptiActivityDisable 9",
        "msptiActivityDisable 1",
        "msptiUnsubscribe",
    ];
    let calls: Vec<&str> = log.lines().filter(|l| !l.starts_with("emit")).collect();
    assert_eq!(calls, [one, one].concat());
    let (recs, _) = c.records();
    assert_eq!(in_domain(&recs, "Kernel").len(), 3, "records of the first window, written once");
}

#[test]
fn no_cann_means_host_only_and_one_info_line() {
    let c = Case::new();
    let out = c.run(r#", "acl_task_time": 2"#, "", &[]);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("libmspti.so")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("[INFO]") && lines[0].contains("not found") && lines[0].contains("host-only"), "{}", lines[0]);
    assert!(!err.contains("WARNING") && !err.contains("ERROR"), "{err}");
    let (recs, _) = c.records();
    assert_eq!(recs.len(), 1, "only the host span");
    assert_eq!(recs[0]["domain"], "Execute");
}

#[test]
fn a_missing_symbol_gives_one_warning_and_host_only() {
    let c = Case::new();
    let lib = stub(&c.cann, "mspti", &["-DSTUB_OMIT_FLUSH"]);
    let out = c.run(r#", "acl_task_time": 2"#, "", &[("LD_PRELOAD", lib.to_str().unwrap()), ("MSP_LINGER_MS", "200")]);
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("[WARNING]")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("msptiActivityFlushAll") && warnings[0].contains("host capture continues"), "{}", warnings[0]);
    assert_eq!(c.log(), "", "nothing was called in the incomplete library");
    let (recs, _) = c.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["domain"], "Execute");
}

#[test]
fn msprof_collection_refuses_device_capture() {
    let c = Case::new();
    let lib = stub(&c.cann, "mspti", &[]);
    let out = c.run(r#", "acl_task_time": 2"#, "", &[("LD_PRELOAD", lib.to_str().unwrap()), ("PROFILING_MODE", "dynamic"), ("MSP_LINGER_MS", "200")]);
    let err = stderr(&out);
    assert_eq!(err.lines().filter(|l| l.contains("[ERROR]") && l.contains("msprof is collecting")).count(), 1, "{err}");
    assert_eq!(c.log(), "");
    assert_eq!(c.records().0.len(), 1);
}

#[test]
fn acl_prof_call_sequence_and_mstx_mirroring() {
    let c = Case::new();
    for l in ["msprofiler", "profapi", "ms_tools_ext"] {
        stub(&c.cann, l, &[]);
    }
    let extra = r#", "acl_task_time": 1, "acl_prof_task_time_level": "L1", "aclDataTypeConfig": "ACL_PROF_AICPU""#;
    let out = c.run(extra, "aclprofStart", &[("MSP_WAIT_STATE_BIT", "4")]);
    let err = stderr(&out);
    assert!(!err.contains("WARNING") && !err.contains("ERROR"), "{err}");
    let run_dir = std::fs::read_dir(c.tmp.path().join("prof")).unwrap().next().unwrap().unwrap().path();
    let rd = run_dir.to_str().unwrap();
    let log = c.log();
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(
        calls,
        [
            "profRegDeviceStateCallback".to_string(),
            format!("aclprofInit {rd} {}", rd.len()),
            // L1 (TASK_TIME | ACL_API) | AICPU | MSPROFTX; default AI Core metrics PIPE_UTILIZATION.
            "aclprofCreateConfig devices=3 n=1 metrics=1 events=NULL mask=0x8b".to_string(),
            "aclprofStart config".to_string(),
            "mstxRangeStartA Execute::forward stream=NULL id=1".to_string(),
            "mstxRangeEnd 1".to_string(),
            "aclprofStop config".to_string(),
            "aclprofDestroyConfig config".to_string(),
            "aclprofFinalize".to_string(),
        ]
    );
    assert!(run_dir.join("PROF_000001_stub").is_dir(), "CANN writes PROF_* under the run directory");
    let (recs, _) = c.records();
    assert_eq!(recs.len(), 1, "ACL prof data stays in PROF_*; the ring holds the host span");
}

#[test]
fn acl_prof_duration_stops_acl_only() {
    let c = Case::new();
    for l in ["msprofiler", "profapi", "ms_tools_ext"] {
        stub(&c.cann, l, &[]);
    }
    let env = [("MSP_WAIT_STATE_BIT", "4"), ("MSP_LINGER_MS", "1500"), ("MSP_LATE_SPAN", "1")];
    c.run(r#", "acl_task_time": 1, "acl_prof_task_time_level": "L0;1""#, "aclprofStart", &env);
    let log = c.log();
    let calls: Vec<&str> = log.lines().skip(2).collect();
    assert_eq!(
        calls,
        [
            "aclprofCreateConfig devices=3 n=1 metrics=1 events=NULL mask=0x880",
            "aclprofStart config",
            "mstxRangeStartA Execute::forward stream=NULL id=1",
            "mstxRangeEnd 1",
            "aclprofStop config",
            "aclprofDestroyConfig config",
            "aclprofFinalize",
        ],
        "after 1 s ACL prof stops and mirroring with it; the late span is not mirrored"
    );
    let (recs, _) = c.records();
    assert_eq!(recs.iter().filter(|r| r["domain"] == "Execute").count(), 2, "host capture went on");
}

#[test]
fn mspti_without_the_clock_functions_is_converted_from_realtime() {
    let c = Case::new();
    let lib = stub(&c.cann, "mspti", &["-DSTUB_OLD_CANN"]);
    c.run(r#", "acl_task_time": 2"#, "emitted", &[("LD_PRELOAD", lib.to_str().unwrap())]);
    let base: i64 = c.log().lines().find_map(|l| l.strip_prefix("emit base=")?.parse().ok()).unwrap();
    let (recs, _) = c.records();
    let api = in_domain(&recs, "Api");
    assert_eq!(api.len(), 3);
    // The stand-in stamped CLOCK_REALTIME; the ring holds CLOCK_MONOTONIC, and the reader's
    // wall-clock conversion gives the realtime stamp back (within clock-read jitter).
    let wall = api[0]["ts_ns"].as_i64().unwrap();
    assert!((wall - base).abs() < 5_000_000, "wall {wall} vs MSPTI realtime {base}");
    assert!(api[0]["mono_ns"].as_i64().unwrap() < base / 2, "stored on the monotonic clock");
    assert_eq!(api[1]["mono_ns"].as_i64().unwrap() - api[0]["mono_ns"].as_i64().unwrap(), 1000, "relative times exact");
}

#[test]
fn acl_prof_is_refused_when_mspti_is_preloaded() {
    let c = Case::new();
    let mspti = stub(&c.cann, "mspti", &[]);
    stub(&c.cann, "msprofiler", &[]);
    let out = c.run(r#", "acl_task_time": 1"#, "", &[("LD_PRELOAD", mspti.to_str().unwrap()), ("MSP_LINGER_MS", "200")]);
    let err = stderr(&out);
    assert_eq!(err.lines().filter(|l| l.contains("[WARNING]") && l.contains("conflicts with MSPTI")).count(), 1, "{err}");
    assert_eq!(c.log(), "");
}

#[test]
fn host_and_npu_usage_samples() {
    let c = Case::new();
    stub(&c.cann, "dcmi", &[]);
    let out = c.run(r#", "host_system_usage_freq": 20, "npu_memory_usage_freq": 10"#, "", &[("MSP_LINGER_MS", "700")]);
    let err = stderr(&out);
    assert!(!err.contains("WARNING") && !err.contains("ERROR"), "{err}");
    let (recs, _) = c.records();
    let host = in_domain(&recs, "HostUsage");
    let get = |name: &str| host.iter().filter(|r| r["name"] == name).map(|r| r["value"].as_f64().unwrap()).collect::<Vec<_>>();
    let cpu = get("cpu_percent");
    let used = get("mem_used_bytes");
    let pct = get("mem_percent");
    assert!(cpu.len() >= 3, "about 20 Hz for 0.7 s: {}", cpu.len());
    let ts: Vec<i64> = host.iter().filter(|r| r["name"] == "cpu_percent").map(|r| r["mono_ns"].as_i64().unwrap()).collect();
    let mean_gap = (ts[ts.len() - 1] - ts[0]) / (ts.len() as i64 - 1);
    assert!(mean_gap >= 45_000_000, "never faster than the configured 20 Hz on average: {mean_gap} ns");
    assert_eq!(used.len(), cpu.len());
    assert!(cpu.iter().chain(&pct).all(|v| (0.0..=100.0).contains(v)), "{cpu:?} {pct:?}");
    assert!(used.iter().all(|&v| v > 0.0));
    assert!(host.iter().all(|r| r["kind"] == "metric" && r["delta"] == false));
    let npu = in_domain(&recs, "NpuUsage");
    assert!(npu.len() >= 8, "two devices, two gauges, about 10 Hz: {}", npu.len());
    let first = |dev: i64, name: &str| npu.iter().find(|r| r["attrs"]["deviceId"] == dev && r["name"] == name).unwrap()["value"].as_f64().unwrap();
    assert_eq!(first(0, "mem_used_bytes"), (49152u64 << 20) as f64);
    assert_eq!(first(0, "mem_percent"), 75.0);
    assert_eq!(first(1, "mem_used_bytes"), (32768u64 << 20) as f64);
    assert_eq!(first(1, "mem_percent"), 50.0);
}

#[test]
fn usage_sampling_is_master_only() {
    // A process that adopts the run tail of a running first process is not the master.
    let c = Case::new();
    let cfg = common::write_config(c.tmp.path(), r#", "host_system_usage_freq": 20"#);
    let tail = format!("0101-0000|{}", std::fs::canonicalize(&cfg).unwrap().display());
    let env =
        [("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_DEVICE_CHILD", ""), ("MS_SERVICE_PROF_RUN_TAIL", tail.as_str()), ("MSP_LINGER_MS", "300")];
    assert!(common::child("device_child", &env).output().unwrap().status.success());
    let (recs, _) = common::read_all(&c.tmp.path().join("prof").join("0101-0000"));
    assert_eq!(recs.len(), 1, "the non-master wrote its host span only: {recs:?}");
    assert_eq!(recs[0]["domain"], "Execute");
}

/// Capture through the stand-in MSPTI (records µs apart, `dropped` reported as dropped) with a
/// batch and forward pass around them, then the real CLI: `msserviceprofiler parse` on the run directory.
/// Returns the case, the output directory and the CLI's stdout.
fn capture_and_parse(dropped: &str) -> (Case, PathBuf, String) {
    let c = Case::new();
    let lib = stub(&c.cann, "mspti", &[]);
    // Stand-in records end at base + 9000 µs; the forward spans base − 1 µs .. base + 10 ms.
    let env = [("LD_PRELOAD", lib.to_str().unwrap()), ("CANN_STUB_SCALE", "1000"), ("CANN_STUB_DROPPED", dropped), ("MSP_FORWARD_AROUND_EMIT", "10000000")];
    c.run(r#", "acl_task_time": 2"#, "emitted", &env);
    let prof = c.tmp.path().join("prof");
    let run_dir = std::fs::read_dir(&prof).unwrap().next().unwrap().unwrap().path();
    let out = c.tmp.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_msserviceprofiler"))
        .args(["parse", "--input-path", run_dir.to_str().unwrap(), "--output-path", out.to_str().unwrap(), "--timezone", "UTC", "--jobs", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "parse failed: {}", String::from_utf8_lossy(&o.stderr));
    (c, out, String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn mspti_capture_to_parse_outputs() {
    let (_c, out, summary) = capture_and_parse("0");
    // By construction (stand-in, µs apart): APIs corr 100..102 at base + 0/1000/2000 µs; kernels
    // corr 100..102 of 300 µs each at base + 100/1100/2100 µs on device 3; one communication op
    // (corr 200, no API call) base + 5000..7000 µs; one marker pair; nothing dropped.
    assert!(
        summary.contains("device: 3 kernel(s), 1 communication op(s), 1 marker(s), 3 API call(s) (3 activities joined to their API call), 0 usage sample(s); 0 activity record(s) dropped by MSPTI"),
        "{summary}"
    );
    assert!(summary.contains("losses: 0 dropped, 0 overwritten, 0 oversize"), "{summary}");
    assert!(!summary.contains("device records lost"), "{summary}");

    // forward.csv: the forward around the emission gets the 3 kernels (0.9 ms), the op (2 ms) and
    // their union (2.9 ms); the child's later, short forward gets none.
    let text = std::fs::read_to_string(out.join("forward.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {head:?}"));
    let want = ["device_kernels", "kernel_time(ms)", "communication_time(ms)", "device_busy_time(ms)"].map(col);
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').collect::<Vec<_>>()).map(|r| want.iter().map(|&i| r[i].to_string()).collect()).collect();
    assert_eq!(rows, [["3", "0.900", "2.000", "2.900"], ["0", "0.000", "0.000", "0.000"]]);

    // chrome_tracing.json: the device-3 kernel track, API→kernel flows onto it.
    let tr: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(out.join("chrome_tracing.json")).unwrap()).unwrap();
    let track = |name: &str| -> u64 {
        tr.iter().find(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == name).unwrap_or_else(|| panic!("no track {name}"))["tid"]
            .as_u64()
            .unwrap()
    };
    let k3 = track("Kernel(device 3)");
    let kernels: Vec<&Value> = tr.iter().filter(|e| e["ph"] == "X" && e["tid"] == k3).collect();
    assert_eq!(kernels.iter().map(|e| e["name"].as_str().unwrap()).collect::<Vec<_>>(), ["MatMulV2", "Add", "Cast"]);
    assert!(kernels.iter().all(|e| e["dur"].as_f64() == Some(300.0)), "{kernels:?}");
    // Epoch µs in an f64 resolve to 0.25 µs at today's dates.
    assert!((kernels[1]["ts"].as_f64().unwrap() - kernels[0]["ts"].as_f64().unwrap() - 1000.0).abs() <= 0.5, "{kernels:?}");
    let comm = track("Communication(device 3)");
    assert_eq!(tr.iter().filter(|e| e["ph"] == "X" && e["tid"] == comm).count(), 1);
    let flows: Vec<&Value> = tr.iter().filter(|e| e["id"].as_str().is_some_and(|i| i.starts_with("api-kernel:"))).collect();
    assert_eq!(flows.len(), 6, "3 API→kernel flows of two points: {flows:?}");
    for (k, corr) in kernels.iter().zip(100..) {
        let f: Vec<&&Value> = flows.iter().filter(|e| e["id"].as_str().unwrap().ends_with(&format!(":{corr}"))).collect();
        assert_eq!(f.len(), 2);
        assert_eq!((f[1]["ph"].as_str(), f[1]["tid"].as_u64(), &f[1]["ts"]), (Some("f"), Some(k3), &k["ts"]));
        let api = tr.iter().find(|e| e["ph"] == "X" && e["args"]["correlationId"] == corr && e["tid"] != k3).unwrap();
        assert_eq!((f[0]["ph"].as_str(), &f[0]["tid"], &f[0]["ts"]), (Some("s"), &api["tid"], &api["ts"]));
    }

    // profiler.db
    let db = rusqlite::Connection::open(out.join("profiler.db")).unwrap();
    let n = |q: &str| -> i64 { db.query_row(q, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{q}: {e}")) };
    assert_eq!(n("SELECT COUNT(*) FROM Kernel"), 3);
    assert_eq!(n("SELECT COUNT(*) FROM Kernel WHERE api_name IS NOT NULL"), 3);
    assert_eq!(n("SELECT SUM(\"end\" - start) FROM Kernel"), 900_000);
    assert_eq!(n("SELECT COUNT(*) FROM Api"), 3);
    assert_eq!(n("SELECT COUNT(*) FROM Communication"), 1);
    assert_eq!(n("SELECT SUM(device_kernels) FROM forward"), 3);
    assert_eq!(n("SELECT device_kernels FROM batch WHERE name = 'modelExec'"), 3);
}

#[test]
fn mspti_drops_reach_the_parse_summary() {
    let (_c, _out, summary) = capture_and_parse("7");
    assert!(summary.contains("0 usage sample(s); 7 activity record(s) dropped by MSPTI"), "{summary}");
    assert!(summary.contains("device records lost before the ring (MSPTI buffers full, or hand-off queue full): 7"), "{summary}");
}
