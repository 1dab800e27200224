//! C programs against the generated header: linked, and through LD_PRELOAD with no Python.

mod common;

use std::path::Path;
use std::process::Command;

fn cc(src: &str, out: &Path, link: bool) {
    let root = env!("CARGO_MANIFEST_DIR");
    let lib = common::cdylib();
    let mut c = Command::new("cc");
    c.args(["-O2", "-Wall", "-Werror", "-std=c11", "-D_GNU_SOURCE"]).arg(format!("{root}/tests/c/{src}")).arg("-o").arg(out).arg(format!("-I{root}/include"));
    if link {
        c.arg(format!("-L{}", lib.parent().unwrap().display())).arg("-lms_service_profiler").arg(format!("-Wl,-rpath,{}", lib.parent().unwrap().display()));
    }
    c.args(["-lpthread", "-ldl"]);
    let st = c.status().expect("cc");
    assert!(st.success(), "cc {src} failed");
}

#[test]
fn c_program_records_from_threads_through_the_header() {
    let tmp = common::tempdir();
    let exe = tmp.path().join("threads");
    cc("threads.c", &exe, true);
    let cfg = common::write_config(tmp.path(), "");
    let out = Command::new(&exe).arg("10000").env("SERVICE_PROF_CONFIG_PATH", &cfg).env_remove("MS_SERVICE_PROF_RUN_TAIL").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("written=40003 dropped=0"), "{}", String::from_utf8_lossy(&out.stdout));
    let (recs, r) = common::read_all(&tmp.path().join("prof"));
    assert_eq!(r.unclean, 0);
    assert_eq!(r.records, 40003);
    let spans: Vec<_> = recs.iter().filter(|v| v["name"] == "forward" && v["rids"].is_array()).collect();
    assert_eq!(spans.len(), 40000);
    let s = spans[7];
    assert_eq!(s["domain"], "Execute");
    assert_eq!(s["attrs"]["scope#QueueName"], "WAITING");
    assert_eq!(s["attrs"]["thread"], 1);
    assert!(s["attrs"]["batch_size"].is_i64());
    assert!(s["dur_ns"].as_i64().unwrap() >= 0);
    let tids: std::collections::BTreeSet<_> = spans.iter().map(|v| v["tid"].as_u64().unwrap()).collect();
    assert_eq!(tids.len(), 4);
    let link = recs.iter().find(|v| v["kind"] == "link").unwrap();
    assert_eq!(link["rids"], serde_json::json!(["api-1", "engine-1"]));
    let metric = recs.iter().find(|v| v["kind"] == "metric").unwrap();
    assert_eq!(metric["value"], 0.5);
    // Wall-clock conversion is sane (within a minute of now).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    assert!((now - s["ts_ns"].as_i64().unwrap()).abs() < 60_000_000_000);
}

#[test]
fn ld_preload_initialises_from_the_config() {
    let tmp = common::tempdir();
    let exe = tmp.path().join("preload");
    cc("preload.c", &exe, false);
    let cfg = common::write_config(tmp.path(), "");
    let lib = common::cdylib();
    let out = Command::new(&exe).env("LD_PRELOAD", &lib).env("SERVICE_PROF_CONFIG_PATH", &cfg).env_remove("MS_SERVICE_PROF_RUN_TAIL").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (recs, r) = common::read_all(&tmp.path().join("prof"));
    assert_eq!(recs.len(), 1000);
    assert_eq!(r.unclean, 0, "the exit handler closed the files");

    // Preloaded into an unrelated program with a missing config: the default file appears.
    let missing = tmp.path().join("new_config.json");
    let st = Command::new("sleep").arg("0.3").env("LD_PRELOAD", &lib).env("SERVICE_PROF_CONFIG_PATH", &missing).status().unwrap();
    assert!(st.success());
    assert!(std::fs::read_to_string(&missing).unwrap().contains("\"enable\": 0"));

    // Without SERVICE_PROF_CONFIG_PATH nothing is written at all.
    let quiet = tmp.path().join("quiet");
    std::fs::create_dir(&quiet).unwrap();
    let st = Command::new("sleep")
        .arg("0.1")
        .current_dir(&quiet)
        .env("HOME", &quiet)
        .env("LD_PRELOAD", &lib)
        .env_remove("SERVICE_PROF_CONFIG_PATH")
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read_dir(&quiet).unwrap().count(), 0);
}
