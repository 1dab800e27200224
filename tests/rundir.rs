//! One run directory per service launch, shared by spawned children — through the inherited
//! environment, and through the rendezvous file when a launcher scrubs the environment.

mod common;

use ms_service_profiler::ffi;

fn emit(tag: &str) {
    assert_eq!(ffi::msp_init(), 1);
    let d = ffi::msp_intern(tag.as_ptr() as _, tag.len());
    assert!(ffi::msp_event(d, d, 0, std::ptr::null()));
    ffi::msp_shutdown();
}

/// Child mode: the "API server" records, then spawns two "engine" processes.
#[test]
fn launcher() {
    match std::env::var("MSP_ROLE").as_deref() {
        Ok("launcher") => {
            assert_eq!(ffi::msp_init(), 1);
            let exe = std::env::current_exe().unwrap();
            let cfg = std::env::var("SERVICE_PROF_CONFIG_PATH").unwrap();
            // Inherits the environment (MS_SERVICE_PROF_RUN_TAIL included).
            let a = std::process::Command::new(&exe).args(["--exact", "launcher", "--test-threads=1"]).env("MSP_ROLE", "engine").status().unwrap();
            // A scrubbed environment: only the config path survives.
            let b = std::process::Command::new(&exe)
                .args(["--exact", "launcher", "--test-threads=1"])
                .env_clear()
                .env("MSP_ROLE", "scrubbed")
                .env("SERVICE_PROF_CONFIG_PATH", &cfg)
                .env("HOME", std::env::var("HOME").unwrap_or_default())
                .status()
                .unwrap();
            assert!(a.success() && b.success());
            emit("launcher");
        }
        Ok(role) => emit(role),
        Err(_) => {}
    }
}

#[test]
fn spawned_children_share_the_run_directory() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), "");
    let st = common::child("launcher", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_ROLE", "launcher")]).status().unwrap();
    assert!(st.success());
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("prof")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "one run directory per launch");
    let sets = ms_service_profiler::reader::discover(&runs[0].path());
    assert_eq!(sets.len(), 3);
    let (recs, _) = common::read_all(&runs[0].path());
    let mut names: Vec<_> = recs.iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["engine", "launcher", "scrubbed"]);
}
