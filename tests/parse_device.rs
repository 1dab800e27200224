//! Device data in `parse`: kernels, API calls, a communication op, a marker, usage samples and an
//! MSPTI drop count, written with the real recorder (typed attributes, as the native device
//! recorder writes them) inside known forward / modelExec spans; every derived number is known
//! by construction.

mod parse_support;

use ms_service_profiler::ffi::{self, MspAttr, MspPayload, MSP_ATTR_INT, MSP_ATTR_STR, MSP_METRIC_GAUGE};
use parse_support::*;
use serde_json::{json, Value};

const ME: &str = "device";

fn id(s: &str) -> u32 {
    ffi::msp_intern(s.as_ptr() as *const _, s.len())
}

enum A<'a> {
    I(&'a str, i64),
    S(&'a str, &'a str),
}

fn attrs(v: &[A]) -> Vec<MspAttr> {
    v.iter()
        .map(|a| match a {
            A::I(k, i) => MspAttr { key: id(k), kind: MSP_ATTR_INT, i: *i, f: 0.0, s: std::ptr::null(), len: 0 },
            A::S(k, s) => MspAttr { key: id(k), kind: MSP_ATTR_STR, i: 0, f: 0.0, s: s.as_ptr() as *const _, len: s.len() },
        })
        .collect()
}

fn payload(a: &[MspAttr]) -> MspPayload {
    MspPayload { attrs: a.as_ptr(), n_attrs: a.len(), rids: std::ptr::null(), n_rids: 0, json: std::ptr::null(), json_len: 0 }
}

struct E {
    base: u64,
}

impl E {
    fn t(&self, us: u64) -> u64 {
        self.base + us * 1000
    }
    fn span(&self, domain: &str, name: &str, a: u64, b: u64, at: &[A]) {
        let v = attrs(at);
        assert!(ffi::msp_span(id(domain), id(name), self.t(a), self.t(b), &payload(&v)));
    }
    fn json_span(&self, domain: &str, name: &str, a: u64, b: u64, j: Value) {
        let s = j.to_string();
        assert!(ffi::msp_span_json(id(domain), id(name), self.t(a), self.t(b), s.as_ptr() as *const _, s.len()));
    }
    fn api(&self, name: &str, a: u64, corr: i64) {
        self.span("Api", name, a, a + 10, &[A::I("correlationId", corr), A::I("pid", 4242)]);
    }
    fn kernel(&self, name: &str, a: u64, b: u64, dev: i64, stream: i64, corr: i64) {
        self.span("Kernel", name, a, b, &[A::I("deviceId", dev), A::I("streamId", stream), A::I("correlationId", corr), A::S("type", "KERNEL_AIVEC")]);
    }
    fn metric(&self, domain: &str, name: &str, us: u64, v: f64, at: &[A]) {
        let a = attrs(at);
        assert!(ffi::msp_metric(id(domain), id(name), self.t(us), v, MSP_METRIC_GAUGE, &payload(&a)));
    }
}

fn emit() {
    let base: u64 = std::env::var(BASE).unwrap().parse().unwrap();
    ffi::msp_init();
    let e = E { base };
    let dicts = |it: u64| json!([{"rid": "r1", "iter": it, "type": if it == 0 { 0 } else { 1 }, "num_scheduled_tokens": 1}]);
    e.json_span("Schedule", "batchFrameworkProcessing", 500, 900, json!({"rid": dicts(0), "type": 2}));
    e.json_span("Execute", "modelExec", 1000, 3000, json!({"rid": dicts(0), "batch_type": "Prefill", "type": 2}));
    e.json_span("Execute", "forward", 1100, 2900, json!({"rid": ["r1"], "type": 2}));
    e.json_span("Execute", "modelExec", 4000, 6000, json!({"rid": dicts(1), "batch_type": "Decode", "type": 2}));
    e.json_span("Execute", "forward", 4100, 5900, json!({"rid": ["r1"], "type": 2}));
    // Forward A: three launches; k3 runs after the forward (and modelExec) ended.
    e.api("aclnnMatmul", 1200, 1);
    e.api("aclnnAdd", 1220, 2);
    e.api("aclnnSoftmax", 2800, 3);
    e.kernel("MatMulV2", 1300, 1500, 0, 1, 1);
    e.kernel("Add", 1400, 1700, 0, 2, 2);
    e.kernel("SoftmaxV2", 3100, 3300, 0, 1, 3);
    e.span("Mstx", "step-marker", 1150, 1150, &[A::I("deviceId", 0), A::I("streamId", 1), A::S("type", "marker")]);
    // Forward B: a communication op (launched by an API call) and a kernel with no API call.
    e.api("HcclAllReduce", 4200, 4);
    e.span(
        "Communication",
        "hcom_allReduce_",
        4300,
        4800,
        &[
            A::I("deviceId", 0),
            A::I("streamId", 3),
            A::I("correlationId", 4),
            A::S("dataType", "FP16"),
            A::I("count", 1024),
            A::S("commName", "hccl_world"),
            A::S("algType", "RING"),
        ],
    );
    e.kernel("Cast", 5000, 5100, 1, 0, 99);
    // Outside every forward.
    e.api("aclnnCopy", 6500, 6);
    e.kernel("Copy", 7000, 7100, 0, 1, 6);
    // Usage samples and an MSPTI drop count.
    e.metric("HostUsage", "cpu_percent", 1000, 12.5, &[]);
    e.metric("HostUsage", "cpu_percent", 2000, 50.0, &[]);
    e.metric("HostUsage", "mem_used_bytes", 2000, 1048576.0, &[]);
    e.metric("NpuUsage", "mem_percent", 1500, 30.0, &[A::I("deviceId", 0)]);
    let c = attrs(&[A::I("count", 7)]);
    assert!(ffi::msp_event(id("Device"), id("msptiDropped"), e.t(8000), &payload(&c)));
    ffi::msp_shutdown();
}

#[test]
fn device() {
    if std::env::var(CHILD).is_ok() {
        emit();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("prof");
    let cfg = config(tmp.path(), &prof);
    spawn(ME, "worker", &cfg, mono_now(), "", None);
    let out = tmp.path().join("out");
    let s = ms_service_profiler::parse::run(&options(&prof, &out)).unwrap();
    let line = s.device.clone().expect("device summary line");
    assert!(line.contains("5 kernel(s), 1 communication op(s), 1 marker(s), 5 API call(s) (5 activities joined"), "{line}");
    assert!(line.contains("4 usage sample(s); 7 activity record(s) dropped by MSPTI"), "{line}");
    assert!(ms_service_profiler::parse::summary_text(&s, &out).contains(&line));

    // forward.csv: device time per forward.
    let fw = read_csv(&out.join("forward.csv"));
    let cols = columns(&fw, &["forward_iter", "device_kernels", "kernel_time(ms)", "communication_time(ms)", "device_busy_time(ms)"]);
    assert_eq!(cols, vec![vec!["1", "3", "0.700", "0.000", "0.600"], vec!["2", "1", "0.100", "0.500", "0.600"]]);
    // batch.csv: execute rows get device time, the schedule row none.
    let b = read_csv(&out.join("batch.csv"));
    let cols = columns(&b, &["name", "device_kernels", "kernel_time(ms)", "communication_time(ms)", "device_busy_time(ms)"]);
    assert_eq!(
        cols,
        vec![
            vec!["batchFrameworkProcessing", "", "", "", ""],
            vec!["modelExec", "3", "0.700", "0.000", "0.600"],
            vec!["modelExec", "1", "0.100", "0.500", "0.600"]
        ]
    );

    // chrome_tracing.json: per-device tracks, API→kernel flows, counters.
    let tr: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(out.join("chrome_tracing.json")).unwrap()).unwrap();
    let thread = |name: &str| -> u64 {
        tr.iter().find(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == name).unwrap_or_else(|| panic!("no track {name}"))["tid"]
            .as_u64()
            .unwrap()
    };
    let (k0, k1, c0, m0) = (thread("Kernel(device 0)"), thread("Kernel(device 1)"), thread("Communication(device 0)"), thread("Mstx(device 0)"));
    let on = |tid: u64| -> Vec<&str> { tr.iter().filter(|e| e["ph"] == "X" && e["tid"] == tid).map(|e| e["name"].as_str().unwrap()).collect() };
    assert_eq!(on(k0), ["MatMulV2", "Add", "SoftmaxV2", "Copy"]);
    assert_eq!(on(k1), ["Cast"]);
    assert_eq!(on(c0), ["hcom_allReduce_"]);
    assert!(tr.iter().any(|e| e["ph"] == "I" && e["tid"] == m0 && e["name"] == "step-marker"));
    let mm = tr.iter().find(|e| e["name"] == "MatMulV2").unwrap();
    assert_eq!(mm["dur"].as_f64().unwrap(), 200.0);
    assert_eq!(mm["args"]["correlationId"], 1);
    let api_tid = tr.iter().find(|e| e["name"] == "aclnnMatmul").unwrap()["tid"].as_u64().unwrap();
    let flows: Vec<&Value> = tr.iter().filter(|e| e["id"].as_str().is_some_and(|i| i.starts_with("api-kernel:"))).collect();
    assert_eq!(flows.len(), 10, "5 API→activity flows of two points");
    let f1: Vec<&&Value> = flows.iter().filter(|e| e["id"].as_str().unwrap().ends_with(":1")).collect();
    assert_eq!(f1.len(), 2);
    assert_eq!((f1[0]["ph"].as_str().unwrap(), f1[0]["tid"].as_u64().unwrap()), ("s", api_tid));
    assert_eq!((f1[1]["ph"].as_str().unwrap(), f1[1]["tid"].as_u64().unwrap(), f1[1]["bp"].as_str().unwrap()), ("f", k0, "e"));
    assert_eq!(f1[1]["ts"], mm["ts"]);
    let cpu: Vec<f64> = tr.iter().filter(|e| e["ph"] == "C" && e["name"] == "Host CPU Usage").map(|e| e["args"]["Usage Percent"].as_f64().unwrap()).collect();
    assert_eq!(cpu, [12.5, 50.0]);
    assert!(tr.iter().any(|e| e["ph"] == "C" && e["name"] == "NPU 0 Memory Usage" && e["args"]["Usage Percent"] == 30.0));
    // Device data stays out of the host model: no batch row, request or span stats from it.
    assert!(!tr.iter().any(|e| e["name"] == "msptiDropped"));

    // profiler.db
    let c = rusqlite::Connection::open(out.join("profiler.db")).unwrap();
    let n = |q: &str| -> i64 { c.query_row(q, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{q}: {e}")) };
    assert_eq!(n("SELECT COUNT(*) FROM Kernel"), 5);
    assert_eq!(n("SELECT COUNT(*) FROM Kernel WHERE api_name IS NULL"), 1);
    assert_eq!(n("SELECT \"end\" - start FROM Kernel WHERE name = 'Add'"), 300_000);
    assert_eq!(n("SELECT COUNT(*) FROM Api WHERE processId = 4242"), 5);
    assert_eq!(n("SELECT dataCount FROM Communication WHERE commGroupName = 'hccl_world' AND algType = 'RING' AND dataType = 'FP16'"), 1024);
    assert_eq!(n("SELECT COUNT(*) FROM Mstx WHERE message = 'step-marker'"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM host_usage"), 3);
    assert_eq!(n("SELECT COUNT(*) FROM Host_Cpu_Usage_curve"), 2);
    assert_eq!(n("SELECT COUNT(*) FROM Npu_Memory_Usage_curve WHERE device_id = 0 AND mem_percent = 30"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM flow WHERE flow_id LIKE 'api-kernel:%'"), 10);
    assert_eq!(n("SELECT COUNT(*) FROM flow f JOIN thread t ON f.track_id = t.track_id WHERE f.type = 'f' AND t.tid = 'Kernel(device 0)'"), 4);
    assert_eq!(n("SELECT COUNT(*) FROM slice s JOIN thread t ON s.track_id = t.track_id WHERE t.tid = 'Kernel(device 0)'"), 4);
    assert_eq!(n("SELECT COUNT(*) FROM counter WHERE name = 'Host CPU Usage'"), 2);
    let fwd: Vec<(i64, f64, f64, f64)> = c
        .prepare("SELECT device_kernels, kernel_time, communication_time, device_busy_time FROM forward ORDER BY start_time")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(fwd, [(3, 0.7, 0.0, 0.6), (1, 0.1, 0.5, 0.6)]);
    assert_eq!(n("SELECT COUNT(*) FROM batch WHERE device_kernels IS NULL"), 1);
    assert_eq!(n("SELECT SUM(device_kernels) FROM batch WHERE name = 'modelExec'"), 4);
}

/// Throughput of the device path (not a pass/fail test; docs/PERFORMANCE.md quotes it):
/// `cargo test --test parse_device -- --ignored --nocapture device_throughput` (the test profile is optimised).
#[test]
#[ignore]
fn device_throughput() {
    const FORWARDS: u64 = 5_000;
    const PER: u64 = 50;
    if std::env::var(CHILD).is_ok() {
        let base: u64 = std::env::var(BASE).unwrap().parse().unwrap();
        ffi::msp_init();
        let e = E { base };
        let j = json!({"rid": [{"rid": "r", "iter": 1, "type": 1, "num_scheduled_tokens": 1}], "type": 2});
        for f in 0..FORWARDS {
            let t0 = f * 1000;
            e.json_span("Execute", "modelExec", t0, t0 + 900, j.clone());
            e.json_span("Execute", "forward", t0 + 10, t0 + 890, json!({"rid": ["r"], "type": 2}));
            for k in 0..PER {
                let corr = (f * PER + k) as i64;
                e.api("aclnnMatmul", t0 + 20 + k * 10, corr);
                e.kernel("MatMulV2", t0 + 30 + k * 10, t0 + 38 + k * 10, (k % 2) as i64, (k % 4) as i64, corr);
            }
        }
        ffi::msp_shutdown();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("prof");
    let cfg = tmp.path().join("ms_service_profiler_config.json");
    std::fs::write(&cfg, json!({"enable": 1, "prof_dir": prof.to_str().unwrap(), "ring_size_mb": 256, "ring_total_mb": 1024}).to_string()).unwrap();
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "device_throughput", "--include-ignored", "--test-threads=1"])
        .env(CHILD, "worker")
        .env(BASE, mono_now().to_string())
        .env("SERVICE_PROF_CONFIG_PATH", &cfg)
        .env("PROF_LOG_LEVEL", "ERROR")
        .status()
        .unwrap();
    assert!(st.success());
    use ms_service_profiler::parse::Format;
    for (what, formats) in [
        ("csv", vec![Format::Csv]),
        ("json", vec![Format::Json]),
        ("db", vec![Format::Db]),
        ("db csv json perfetto", vec![Format::Db, Format::Csv, Format::Json, Format::Perfetto]),
    ] {
        let out = tmp.path().join(what.replace(' ', "_"));
        let mut o = options(&prof, &out);
        o.jobs = 0;
        o.formats = formats;
        let s = ms_service_profiler::parse::run(&o).unwrap();
        assert_eq!(s.report.dropped, 0);
        let secs = s.elapsed.as_secs_f64();
        println!(
            "device_throughput: {} records ({} kernels, {} API calls), --format {what}: {secs:.2} s = {:.0} records/s",
            s.records,
            FORWARDS * PER,
            FORWARDS * PER,
            s.records as f64 / secs
        );
    }
}
