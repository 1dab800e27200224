//! Shared helpers for the integration tests: temp capture dirs, configs, self-exec children,
//! reading captures back through the reader.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ms_service_profiler::reader::{self, json, Process, Report};

/// A fresh temp dir (kept on failure for inspection via the path in the panic message).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("msp-test-").tempdir().unwrap()
}

/// Write a config enabling capture into `dir/prof`.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("ms_service_profiler_config.json");
    let prof = dir.join("prof");
    std::fs::write(&cfg, format!("{{\n    \"enable\": 1,\n    \"prof_dir\": \"{}\"{extra}\n}}\n", prof.display())).unwrap();
    cfg
}

/// Re-run this test binary, running only test `name`, with `env` set (child mode).
pub fn child(name: &str, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", name, "--nocapture", "--test-threads=1"]).stdout(std::process::Stdio::null());
    c.env_remove("SERVICE_PROF_CONFIG_PATH").env_remove("MS_SERVICE_PROF_RUN_TAIL");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Every record under `root` as JSON, plus the merged report.
pub fn read_all(root: &Path) -> (Vec<serde_json::Value>, Report) {
    let mut out = Vec::new();
    let mut total = Report::default();
    for fs in reader::discover(root) {
        let p = Process::open(fs).unwrap();
        let r = p.scan(|it| out.push(json::record(it.process, &it.record)));
        total.merge(&r);
    }
    (out, total)
}

/// The directory holding the built cdylib (`target/<profile>/`).
pub fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let lib = dir.join("libms_service_profiler.so");
    assert!(lib.exists(), "cdylib not built at {}", lib.display());
    lib
}
