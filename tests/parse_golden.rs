//! Golden test: a three-process vLLM-like capture written by the real recorder, parsed, and every
//! derived number checked against the values built into the scenario.

mod parse_support;

use std::os::unix::fs::PermissionsExt;

use parse_support::*;

const ME: &str = "golden";

#[test]
fn golden() {
    child_main();
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("prof");
    let cfg = config(tmp.path(), &prof);
    capture(ME, &cfg, "cmpl-", None);
    let out = tmp.path().join("out");
    let s = ms_service_profiler::parse::run(&options(&prof, &out)).unwrap();
    assert_eq!(s.processes, 3);
    assert_eq!(s.hosts, 1);
    assert_eq!(s.records, 9 + 16 + 4);
    assert_eq!(s.report.dropped + s.report.corrupt_chunks + s.report.torn_records, 0);
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o750);

    // request.csv
    let req = read_csv(&out.join("request.csv"));
    assert_eq!(
        req[0],
        [
            "http_rid",
            "start_datetime",
            "recv_token_size",
            "reply_token_size",
            "execution_time(ms)",
            "queue_wait_time(ms)",
            "first_token_latency(ms)",
            "cache_hit_rate",
            "start_time(ms)"
        ]
    );
    let cols = columns(
        &req,
        &["http_rid", "recv_token_size", "reply_token_size", "execution_time(ms)", "queue_wait_time(ms)", "first_token_latency(ms)", "cache_hit_rate"],
    );
    assert_eq!(cols, vec![vec!["cmpl-a", "7", "3", "7.100", "1.300", "3.600", "0.5"], vec!["cmpl-b", "5", "3", "7.000", "1.100", "3.400", "N/A"]]);
    let dt = &req[1][1];
    assert!(dt.len() == 32 && dt.ends_with("+00:00") && &dt[19..20] == ":", "{dt}");
    // start_time(ms) is the epoch ms of httpReq; b starts 0.2 ms after a.
    let (sa, sb): (i64, i64) = (req[1][8].parse().unwrap(), req[2][8].parse().unwrap());
    assert!(sb - sa <= 1 && sb >= sa);

    // batch.csv
    let b = read_csv(&out.join("batch.csv"));
    assert_eq!(
        b[0],
        [
            "name",
            "res_list",
            "start_datetime",
            "end_datetime",
            "during_time(ms)",
            "batch_type",
            "prof_id",
            "batch_size",
            "total_blocks",
            "used_blocks",
            "free_blocks",
            "blocks_allocated",
            "blocks_freed",
            "kvcache_usage_rate",
            "prefill_batch_size",
            "decode_batch_size",
            "prefill_scheduled_tokens",
            "decode_scheduled_tokens",
            "total_scheduled_tokens",
            "dp_rank",
            "start_time(ms)",
            "end_time(ms)"
        ]
    );
    let cols = columns(
        &b,
        &[
            "name",
            "during_time(ms)",
            "batch_type",
            "batch_size",
            "total_blocks",
            "used_blocks",
            "free_blocks",
            "blocks_allocated",
            "blocks_freed",
            "kvcache_usage_rate",
            "prefill_batch_size",
            "decode_batch_size",
            "prefill_scheduled_tokens",
            "decode_scheduled_tokens",
            "total_scheduled_tokens",
            "dp_rank",
        ],
    );
    let want = [
        ["batchFrameworkProcessing", "0.500", "Prefill", "2.0", "100", "10", "90", "10", "0", "0.1", "2", "0", "12", "0", "12", "0"],
        ["modelExec", "2.000", "Prefill", "2.0", "0", "0", "0", "0", "0", "0", "2", "0", "12", "0", "12", "0"],
        ["batchFrameworkProcessing", "0.300", "Decode", "2.0", "100", "12", "88", "2", "0", "0.12", "0", "2", "0", "2", "2", "0"],
        ["modelExec", "1.000", "Decode", "2.0", "0", "0", "0", "0", "0", "0", "0", "2", "0", "2", "2", "0"],
        ["batchFrameworkProcessing", "0.200", "Decode", "2.0", "100", "8", "92", "0", "4", "0.08", "0", "2", "0", "2", "2", "0"],
        ["modelExec", "0.800", "Decode", "2.0", "0", "0", "0", "0", "0", "0", "0", "2", "0", "2", "2", "0"],
    ];
    assert_eq!(cols, want.iter().map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>()).collect::<Vec<_>>());
    // res_list is JSON with the API ids; start/end are epoch ms (not µs).
    let res: serde_json::Value = serde_json::from_str(&b[1][1]).unwrap();
    assert_eq!(res[0]["rid"], "cmpl-a");
    assert_eq!(res[1]["num_scheduled_tokens"], 5);
    let st: f64 = b[1][20].parse().unwrap();
    let en: f64 = b[1][21].parse().unwrap();
    assert!((en - st - 0.5).abs() < 0.0015 && st > 1.0e12 && st < 1.0e14, "{st} {en}");

    // kvcache.csv
    let k = read_csv(&out.join("kvcache.csv"));
    assert_eq!(k[0], ["name", "start_time", "total_blocks", "used_blocks", "free_blocks", "blocks_allocated", "blocks_freed", "kvcache_usage_rate"]);
    let cols = columns(&k, &["name", "total_blocks", "used_blocks", "free_blocks", "blocks_allocated", "blocks_freed", "kvcache_usage_rate"]);
    assert_eq!(
        cols,
        vec![
            vec!["KVCacheStatus", "100", "10", "90", "10", "0", "0.1"],
            vec!["KVCacheStatus", "100", "12", "88", "2", "0", "0.12"],
            vec!["KVCacheStatus", "100", "8", "92", "0", "4", "0.08"],
            vec!["Free", "", "", "", "", "", "0.04"],
        ]
    );

    // forward.csv
    let f = read_csv(&out.join("forward.csv"));
    assert_eq!(
        f[0],
        [
            "name",
            "relative_start_time(ms)",
            "start_datetime",
            "end_datetime",
            "during_time(ms)",
            "bubble_time(ms)",
            "batch_size",
            "batch_type",
            "forward_iter",
            "dp_rank",
            "prof_id",
            "hostname",
            "start_time(ms)",
            "end_time(ms)"
        ]
    );
    let cols = columns(&f, &["relative_start_time(ms)", "during_time(ms)", "bubble_time(ms)", "batch_size", "batch_type", "forward_iter", "dp_rank"]);
    assert_eq!(
        cols,
        vec![
            vec!["0.00", "1.800", "1.00", "2.0", "Prefill", "1", "0"],
            vec!["2.80", "0.800", "1.10", "2.0", "Decode", "2", "0"],
            vec!["4.70", "0.600", "", "2.0", "Decode", "3", "0"],
        ]
    );

    // Summaries.
    let rs = read_csv(&out.join("request_summary.csv"));
    assert_eq!(rs[0], ["Metric", "Average", "Max", "Min", "P50", "P90", "P99"]);
    let rows: Vec<Vec<&str>> = rs[1..].iter().map(|r| r.iter().map(|s| s.as_str()).collect()).collect();
    assert_eq!(
        rows,
        vec![
            vec!["first_token_latency (ms)", "3.5000", "3.6000", "3.4000", "3.5000", "3.5800", "3.5980"],
            vec!["subsequent_token_latency (ms)", "1.7500", "1.8000", "1.7000", "1.7500", "1.8000", "1.8000"],
            vec!["total_time (ms)", "7.0500", "7.1000", "7.0000", "7.0500", "7.0900", "7.0990"],
            vec!["exec_time (ms)", "3.8000", "3.8000", "3.8000", "3.8000", "3.8000", "3.8000"],
            vec!["waiting_time (ms)", "1.2000", "1.3000", "1.1000", "1.2000", "1.2800", "1.2980"],
            vec!["input_token_num", "6.0000", "7.0000", "5.0000", "6.0000", "6.8000", "6.9800"],
            vec!["generated_token_num", "3.0000", "3.0000", "3.0000", "3.0000", "3.0000", "3.0000"],
        ]
    );
    let ss = read_csv(&out.join("service_summary.csv"));
    assert_eq!(
        ss,
        vec![
            vec!["Metric", "Value"],
            vec!["total_input_token_num", "12"],
            vec!["total_generated_token_num", "6"],
            vec!["generate_token_speed (token/s)", "833.33333333"],
            vec!["generate_all_token_speed (token/s)", "2500.00000000"]
        ]
    );
    let bs = read_csv(&out.join("batch_summary.csv"));
    let rows: Vec<Vec<&str>> = bs[1..].iter().map(|r| r.iter().map(|s| s.as_str()).collect()).collect();
    assert_eq!(
        rows,
        vec![
            vec!["prefill_batch_num", "2.0000", "2.0000", "2.0000", "2.0000", "2.0000", "2.0000"],
            vec!["decode_batch_num", "2.0000", "2.0000", "2.0000", "2.0000", "2.0000", "2.0000"],
            vec!["prefill_exec_time (ms)", "2.0000", "2.0000", "2.0000", "2.0000", "2.0000", "2.0000"],
            vec!["decode_exec_time (ms)", "0.9000", "1.0000", "0.8000", "0.9000", "0.9800", "0.9980"],
        ]
    );

    // span_info/
    let sp = read_csv(&out.join("span_info/batchFrameworkProcessing.csv"));
    assert_eq!(sp[0], ["span_name", "start_datetime", "end_datetime", "during_time(ms)", "hostname", "pid"]);
    assert_eq!(columns(&sp, &["during_time(ms)"]), vec![vec!["0.500"], vec!["0.300"], vec!["0.200"]]);
    assert_eq!(read_csv(&out.join("span_info/forward.csv")).len(), 4);
    assert_eq!(columns(&read_csv(&out.join("span_info/sample.csv")), &["during_time(ms)"]), vec![vec!["0.090"]]);
    assert!(!out.join("spec_decode.csv").exists());
    for name in ["request.csv", "batch.csv", "chrome_tracing.json", "profiler.db", "span_info/forward.csv"] {
        assert_eq!(std::fs::metadata(out.join(name)).unwrap().permissions().mode() & 0o777, 0o640, "{name}");
    }

    check_trace(&out.join("chrome_tracing.json"));
    check_perfetto(&out.join("trace.perfetto-trace"));
    assert!(std::fs::read_dir(&out).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().ends_with(".part")));
    check_db(&out.join("profiler.db"));
}

fn check_trace(path: &std::path::Path) {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let evs = v.as_array().expect("a bare array");
    for e in evs {
        let ph = e["ph"].as_str().unwrap();
        assert!(["X", "I", "C", "M", "s", "t", "f"].contains(&ph), "{e}");
        assert!(e["pid"].is_u64(), "{e}");
        if ph != "M" {
            assert!(e["ts"].is_number(), "{e}");
        }
    }
    let count = |ph: &str, name: &str| evs.iter().filter(|e| e["ph"] == ph && e["name"] == name).count();
    assert_eq!(count("X", "batchFrameworkProcessing"), 3);
    assert_eq!(count("X", "forward"), 3);
    assert_eq!(count("I", "httpReq"), 2);
    assert_eq!(count("C", "WaitingQueue"), 3);
    assert_eq!(count("C", "Schedule.KVCache-dp0"), 4);
    // A modelExec slice: µs, 2 ms long, batch fields in args.
    let me = evs.iter().find(|e| e["name"] == "modelExec").unwrap();
    assert_eq!(me["dur"].as_f64().unwrap(), 2000.0);
    assert_eq!(me["args"]["batch_size"], 2.0);
    assert_eq!(me["args"]["batch_type"], "Prefill");
    assert!(me["args"]["start_datetime"].as_str().unwrap().ends_with("+00:00"));
    // One flow per request crossing the three processes, starting at httpReq, ending with bp=e
    // (flow points are written part by part, not in time order: viewers sort by ts).
    let mut flow: Vec<&serde_json::Value> = evs.iter().filter(|e| e["name"] == "flow_cmpl-a").collect();
    flow.sort_by(|a, b| a["ts"].as_f64().unwrap().total_cmp(&b["ts"].as_f64().unwrap()));
    let phases: Vec<&str> = flow.iter().map(|e| e["ph"].as_str().unwrap()).collect();
    assert_eq!(phases.iter().filter(|p| **p == "s").count(), 1, "{phases:?}");
    assert_eq!(phases.iter().filter(|p| **p == "f").count(), 1, "{phases:?}");
    assert_eq!(flow.first().unwrap()["ph"], "s");
    assert_eq!(flow.first().unwrap()["ts"], evs.iter().find(|e| e["name"] == "httpReq" && e["args"]["rid"] == "cmpl-a").unwrap()["ts"]);
    assert_eq!(flow.last().unwrap()["ph"], "f");
    assert_eq!(flow.last().unwrap()["bp"], "e");
    let pids: std::collections::HashSet<u64> = flow.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 3);
    // Named, ordered processes.
    let names: Vec<String> = evs.iter().filter(|e| e["name"] == "process_name").map(|e| e["args"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 3);
    assert!(names[0].starts_with("APIServer") && names[1].starts_with("EngineCore") && names[2].starts_with("Worker"), "{names:?}");
    let labels: Vec<&str> = evs.iter().filter(|e| e["name"] == "process_labels").map(|e| e["args"]["labels"].as_str().unwrap()).collect();
    assert!(labels[1].ends_with(",dp0"), "{labels:?}");
}

fn check_perfetto(path: &std::path::Path) {
    use ms_service_profiler::parse::export::perfetto::decode_packets;
    let packets = decode_packets(&std::fs::read(path).unwrap()).expect("well-formed protobuf");
    let descriptors = packets.iter().filter(|p| p.iter().any(|(f, _)| *f == 60)).count();
    // 3 processes, their threads (api: Engine; engine: Schedule, Execute; worker: Execute) and
    // the engine's counters (WaitingQueue, RunningQueue, Schedule.KVCache-dp0, KV Usage-dp0).
    assert_eq!(descriptors, 3 + 4 + 4);
    let events: Vec<&Vec<(u32, Vec<u8>)>> = packets.iter().filter(|p| p.iter().any(|(f, _)| *f == 11)).collect();
    // Slices give begin+end, instants and counters one packet each.
    let slices = 3 + 3 + 3 + 1; // batchFrameworkProcessing, modelExec, forward, sample
    assert!(events.len() >= 2 * slices + 9, "{}", events.len());
    for p in &events {
        assert!(p.iter().any(|(f, _)| *f == 8), "timestamp");
    }
}

fn check_db(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    let n = |q: &str| -> i64 { c.query_row(q, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{q}: {e}")) };
    assert_eq!(n("SELECT COUNT(*) FROM process"), 3);
    assert_eq!(n("SELECT COUNT(*) FROM slice WHERE name = 'forward'"), 3);
    assert_eq!(n("SELECT duration FROM slice WHERE name = 'modelExec' ORDER BY timestamp LIMIT 1"), 2_000_000);
    assert_eq!(n("SELECT COUNT(*) FROM counter WHERE name = 'WaitingQueue'"), 3);
    assert!(n("SELECT COUNT(*) FROM flow WHERE flow_id = 'cmpl-a'") >= 3);
    assert_eq!(n("SELECT COUNT(*) FROM thread t JOIN slice s ON s.track_id = t.track_id WHERE t.tid LIKE 'Execute(%'"), 3 + 4);
    assert_eq!(n("SELECT COUNT(*) FROM request_data"), 2);
    let ttft: f64 = c.query_row("SELECT \"first_token_latency(ms)\" FROM request_data WHERE http_rid = 'cmpl-a'", [], |r| r.get(0)).unwrap();
    assert_eq!(ttft, 3.6);
    assert_eq!(n("SELECT COUNT(*) FROM batch_info"), 6);
    assert_eq!(n("SELECT COUNT(*) FROM Batch_Size_curve"), 3);
    assert_eq!(n("SELECT MAX(batch_id) FROM Batch_Token_curve"), 2);
    assert_eq!(n("SELECT COUNT(*) FROM batch_req"), 6);
    assert_eq!(n("SELECT COUNT(*) FROM forward_info"), 3);
    assert_eq!(n("SELECT COUNT(*) FROM kvcache_usage"), 4);
    assert_eq!(n("SELECT COUNT(*) FROM Kvcache_Usage_Percent_curve"), 4);
    assert_eq!(n("SELECT COUNT(*) FROM Request_Status_curve"), 5);
    assert_eq!(n("SELECT COUNT(*) FROM First_Token_Latency_curve"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM Request_Latency_curve"), 2);
    assert!(n("SELECT COUNT(*) FROM data_table") >= 4);
}
