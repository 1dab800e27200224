//! Spec decoding (specDecoding rows, accepted counts from modelRunnerExec, spec_decode.csv) and
//! request-id mapping through Link records, written by the real recorder.

mod parse_support;

use ms_service_profiler::ffi;
use parse_support::*;
use serde_json::json;

const ME: &str = "spec";

fn id(s: &str) -> u32 {
    ffi::msp_intern(s.as_ptr() as *const _, s.len())
}

fn child() {
    let Ok(_) = std::env::var(CHILD) else { return };
    let base: u64 = std::env::var(BASE).unwrap().parse().unwrap();
    ffi::msp_init();
    let t = |us: u64| base + us * 1000;
    let ev = |d: &str, n: &str, us: u64, j: serde_json::Value| {
        let j = j.to_string();
        assert!(ffi::msp_event_json(id(d), id(n), t(us), j.as_ptr() as *const _, j.len()));
    };
    let sp = |d: &str, n: &str, a: u64, b: u64, j: serde_json::Value| {
        let j = j.to_string();
        assert!(ffi::msp_span_json(id(d), id(n), t(a), t(b), j.as_ptr() as *const _, j.len()));
    };
    // API id "api-x" linked to the engine id "eng-1" (no `-<8 hex>` pattern: only the link maps it).
    ev("Engine", "httpReq", 0, json!({"rid": "api-x"}));
    let (from, to) = ("api-x", "eng-1");
    assert!(ffi::msp_link(t(5), from.as_ptr() as *const _, from.len(), to.as_ptr() as *const _, to.len()));
    ev("Schedule", "Enqueue", 10, json!({"rid": "eng-1", "QueueSize=": 1, "scope#QueueName": "WAITING"}));
    ev("Schedule", "Dequeue", 60, json!({"rid": ["eng-1"], "QueueSize=": 0, "scope#QueueName": "WAITING"}));
    sp(
        "Execute",
        "modelExec",
        100,
        1000,
        json!({"rid": [{"rid": "eng-1", "iter": 1, "type": 1, "num_scheduled_tokens": 3}, {"rid": "eng-2", "iter": 1, "type": 1, "num_scheduled_tokens": 3}], "batch_type": "Decode"}),
    );
    sp(
        "Execute",
        "specDecoding",
        1000,
        1200,
        json!({"rid": [
        {"rid": "eng-1", "iter": 1, "type": 1, "num_scheduled_tokens": 2, "num_spec_output_tokens": 2, "num_computed_tokens": 2, "num_spec_accepted_tokens": 0},
        {"rid": "eng-2", "iter": 1, "type": 1, "num_scheduled_tokens": 3, "num_spec_output_tokens": 3, "num_computed_tokens": 3, "num_spec_accepted_tokens": 0}
    ], "batch_type": "Decode", "accepted_ratio": 0.0, "accepted_ratio_per_pos": {}}),
    );
    sp("Execute", "modelRunnerExec", 1300, 2000, json!({"rid": [{"rid": "eng-1"}, {"rid": "eng-2"}], "spec_decode_accepted_by_req": {"eng-1": 1, "eng-2": 3}}));
    ev("Engine", "httpRes", 2100, json!({"rid": "api-x", "recvTokenSize=": 4, "replyTokenSize=": 2}));
    ffi::msp_shutdown();
}

#[test]
fn spec() {
    child();
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("prof");
    let cfg = config(tmp.path(), &prof);
    spawn(ME, "one", &cfg, mono_now(), "", None);
    let out = tmp.path().join("out");
    let s = ms_service_profiler::parse::run(&options(&prof, &out)).unwrap();
    assert_eq!(s.records, 8);

    let sd = read_csv(&out.join("spec_decode.csv"));
    assert_eq!(
        sd[0],
        [
            "rid",
            "iter",
            "prof_id",
            "start_datetime",
            "end_datetime",
            "during_time(ms)",
            "spec_tokens",
            "accepted_tokens",
            "accepted_ratio",
            "draft_model_time_ms"
        ]
    );
    let cols = columns(&sd, &["rid", "iter", "during_time(ms)", "spec_tokens", "accepted_tokens", "accepted_ratio", "draft_model_time_ms"]);
    assert_eq!(cols, vec![vec!["api-x", "1", "0.200", "2", "1", "0.5", "0.200"], vec!["eng-2", "1", "0.200", "3", "3", "1", "0.200"]]);

    let b = read_csv(&out.join("batch.csv"));
    assert!(b[0].contains(&"accepted_ratio".to_string()) && !b[0].contains(&"total_blocks".to_string()), "{:?}", b[0]);
    let cols = columns(&b, &["name", "batch_size", "decode_batch_size", "decode_scheduled_tokens", "accepted_ratio", "accepted_ratio_per_pos"]);
    assert_eq!(
        cols,
        vec![
            vec!["modelExec", "2.0", "2", "6", "", ""],
            vec!["specDecoding", "2.0", "2", "6", "0.8", r#"{"0":1.0,"1":0.5,"2":1.0}"#],
            vec!["modelRunnerExec", "2.0", "0", "0", "", ""],
        ]
    );
    let res: serde_json::Value = serde_json::from_str(&b[2][1]).unwrap();
    assert_eq!(res[0]["rid"], "api-x");
    assert_eq!(res[0]["num_spec_accepted_tokens"], 1);

    // The link maps eng-1 onto api-x: one request with the engine's queue wait.
    let req = read_csv(&out.join("request.csv"));
    let cols = columns(&req, &["http_rid", "recv_token_size", "reply_token_size", "execution_time(ms)", "queue_wait_time(ms)"]);
    assert_eq!(cols[0], vec!["api-x", "4", "2", "2.100", "0.050"]);
}
