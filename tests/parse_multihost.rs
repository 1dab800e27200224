//! Two hosts (run directories side by side, each with API server, EngineCore and worker) and the
//! CLI: exit codes, symlink refusal, format selection.

mod parse_support;

use std::process::Command;

use parse_support::*;

const ME: &str = "multihost";

#[test]
fn multihost() {
    child_main();
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("captures");
    for (h, prefix) in [("host-a", "ha-"), ("host-b", "hb-")] {
        let dir = tmp.path().join(format!("cfg-{h}"));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = config(&dir, &root.join(h));
        capture(ME, &cfg, prefix, Some(h));
    }
    let out = tmp.path().join("out");
    let s = ms_service_profiler::parse::run(&options(&root, &out)).unwrap();
    assert_eq!((s.processes, s.hosts, s.requests), (6, 2, 4));
    let req = read_csv(&out.join("request.csv"));
    let mut cols = columns(&req, &["http_rid", "first_token_latency(ms)", "queue_wait_time(ms)", "execution_time(ms)"]);
    cols.sort();
    assert_eq!(
        cols,
        vec![
            vec!["ha-a", "3.600", "1.300", "7.100"],
            vec!["ha-b", "3.400", "1.100", "7.000"],
            vec!["hb-a", "3.600", "1.300", "7.100"],
            vec!["hb-b", "3.400", "1.100", "7.000"],
        ]
    );
    // relative_start_time is per host; bubbles per process.
    let f = read_csv(&out.join("forward.csv"));
    let mut cols = columns(&f, &["hostname", "relative_start_time(ms)", "forward_iter", "bubble_time(ms)"]);
    cols.sort();
    let want: Vec<Vec<String>> = ["host-a", "host-b"]
        .iter()
        .flat_map(|h| [["0.00", "1", "1.00"], ["2.80", "2", "1.10"], ["4.70", "3", ""]].map(|r| vec![h.to_string(), r[0].into(), r[1].into(), r[2].into()]))
        .collect();
    assert_eq!(cols, want);
    let b = read_csv(&out.join("batch.csv"));
    assert_eq!(b.len(), 1 + 12);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("chrome_tracing.json")).unwrap()).unwrap();
    let labels: std::collections::BTreeSet<String> =
        v.as_array().unwrap().iter().filter(|e| e["name"] == "process_labels").map(|e| e["args"]["labels"].as_str().unwrap().to_string()).collect();
    assert_eq!(labels.into_iter().collect::<Vec<_>>(), vec!["host-a", "host-a,dp0", "host-b", "host-b,dp0"]);
    let sort: Vec<(u64, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_sort_index")
        .map(|e| (e["args"]["sort_index"].as_u64().unwrap(), e["pid"].as_u64().unwrap()))
        .collect();
    assert_eq!(sort.len(), 6);
    // A trace-only parse keeps no table rows, and writes the same traces.
    let out_t = tmp.path().join("out-traces");
    let mut o = options(&root, &out_t);
    o.formats = vec![ms_service_profiler::parse::Format::Json, ms_service_profiler::parse::Format::Perfetto];
    let t = ms_service_profiler::parse::run(&o).unwrap();
    assert_eq!((t.records, t.processes, t.hosts, t.requests), (s.records, 6, 2, 4));
    for f in ["chrome_tracing.json", "trace.perfetto-trace"] {
        assert!(std::fs::read(out.join(f)).unwrap() == std::fs::read(out_t.join(f)).unwrap(), "{f} differs");
    }
    let mut names: Vec<_> = std::fs::read_dir(&out_t).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["chrome_tracing.json", "trace.perfetto-trace"]);

    // One worker thread writes the same CSVs as two.
    let out_1 = tmp.path().join("out-one-thread");
    let mut o = options(&root, &out_1);
    o.formats = vec![ms_service_profiler::parse::Format::Csv];
    o.jobs = 1;
    ms_service_profiler::parse::run(&o).unwrap();
    for f in ["batch.csv", "request.csv", "kvcache.csv", "forward.csv"] {
        let one = std::fs::read(out_1.join(f)).unwrap();
        assert!(one.len() > 100 && one == std::fs::read(out.join(f)).unwrap(), "{f} differs between 1 and 2 threads");
    }

    // CLI.
    let exe = env!("CARGO_BIN_EXE_msserviceprofiler");
    let run = |args: &[&std::ffi::OsStr]| Command::new(exe).arg("parse").args(args).output().unwrap();
    let o2 = tmp.path().join("out2");
    let r = run(&[
        "--input-path".as_ref(),
        root.as_os_str(),
        "--output-path".as_ref(),
        o2.as_os_str(),
        "--format".as_ref(),
        "csv".as_ref(),
        "--timezone".as_ref(),
        "+08:00".as_ref(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("from 6 process(es) on 2 host(s)"), "{text}");
    assert!(o2.join("request.csv").exists() && !o2.join("chrome_tracing.json").exists() && !o2.join("profiler.db").exists());
    assert!(read_csv(&o2.join("request.csv"))[1][1].ends_with("+08:00"));
    // Symlinked input: refused (2).
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&root, &link).unwrap();
    let r = run(&["--input-path".as_ref(), link.as_os_str(), "--output-path".as_ref(), o2.as_os_str()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("symlink"));
    // Missing input (2), bad format (2), empty input (3).
    let r = run(&["--input-path".as_ref(), tmp.path().join("nope").as_os_str()]);
    assert_eq!(r.status.code(), Some(2));
    let r = run(&["--input-path".as_ref(), root.as_os_str(), "--format".as_ref(), "xml".as_ref()]);
    assert_eq!(r.status.code(), Some(2));
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = run(&["--input-path".as_ref(), empty.as_os_str(), "--output-path".as_ref(), o2.as_os_str()]);
    assert_eq!(r.status.code(), Some(3));
}
