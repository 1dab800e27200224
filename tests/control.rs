//! The control plane, end to end in one process: default file, the guide's sed command, edits
//! within one second, invalid JSON mid-write, timelimit and step-limit write-back.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ms_service_profiler::ffi;

fn state() -> u64 {
    unsafe { *ffi::msp_state_word() }
}
fn on() -> bool {
    state() & ffi::MSP_STATE_ENABLED != 0
}

/// Wait until capture is `want`; returns how long it took.
fn wait_for(want: bool, limit: Duration) -> Duration {
    let t = Instant::now();
    while on() != want {
        assert!(t.elapsed() < limit, "capture did not turn {} within {limit:?}", if want { "on" } else { "off" });
        std::thread::sleep(Duration::from_millis(2));
    }
    t.elapsed()
}

fn sed(expr: &str, file: &Path) {
    assert!(Command::new("sed").args(["-i", expr]).arg(file).status().unwrap().success());
}

fn write_nonatomic(file: &Path, text: &str) {
    std::fs::OpenOptions::new().write(true).truncate(true).open(file).unwrap();
    std::fs::write(file, text).unwrap();
}

#[test]
fn config_file_drives_capture() {
    let tmp = common::tempdir();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let cfg = tmp.path().join("ms_service_profiler_config.json");
    std::env::set_var("HOME", &home);
    std::env::set_var("SERVICE_PROF_CONFIG_PATH", &cfg);
    std::env::set_var("PROF_LOG_LEVEL", "ERROR");

    // A missing file is created with "enable": 0 and nothing is captured.
    assert_eq!(ffi::msp_init(), 1);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("\n    \"enable\": 0,\n"), "{text}");
    assert!(text.contains(&format!("\"prof_dir\": \"{}/.ms_server_profiler/\"", home.display())));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o640);
    assert!(!on());
    let d = ffi::msp_intern(b"Test".as_ptr() as _, 4);
    assert!(!ffi::msp_event(d, d, 0, std::ptr::null()));
    assert!(!home.join(".ms_server_profiler").exists(), "nothing written while disabled");

    // The guide's sed command turns it on within 200 ms.
    sed(r#"s/"enable":\s*0/"enable": 1/"#, &cfg);
    let took = wait_for(true, Duration::from_millis(200));
    eprintln!("enable picked up after {took:?}");
    assert!(ffi::msp_event(d, d, 0, std::ptr::null()));

    // Two edits within one second are both seen (ns mtime / inode / size, not whole seconds).
    sed(r#"s/"enable": 1/"enable": 0/"#, &cfg);
    wait_for(false, Duration::from_millis(200));
    sed(r#"s/"enable": 0/"enable": 1/"#, &cfg);
    wait_for(true, Duration::from_millis(200));

    // Invalid JSON in the middle of an editor's write keeps the current state.
    write_nonatomic(&cfg, "{\n    \"enable\": 0,\n    \"prof_dir\": ");
    std::thread::sleep(Duration::from_millis(300));
    assert!(on(), "a half-written file must not stop capture");
    write_nonatomic(&cfg, "{\"enable\": true, \"profiler_level\": \"L2\"}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(on());
    write_nonatomic(&cfg, "{\"enable\": 0}");
    wait_for(false, Duration::from_millis(200));
    // Every field is re-read on 0 → 1: the level changes with it.
    write_nonatomic(&cfg, "{\"enable\": true, \"profiler_level\": \"L2\"}");
    wait_for(true, Duration::from_millis(200));
    assert_eq!((state() >> 8) & 0xff, 30);
    assert!(ffi::msp_is_enabled(30, d) && !ffi::msp_is_enabled(40, d));

    // A domain filter (with the documented alias) applies to records and to msp_is_enabled.
    write_nonatomic(&cfg, "{\"enable\": 0}");
    wait_for(false, Duration::from_millis(200));
    write_nonatomic(&cfg, "{\"enable\": 1, \"domain\": \"Request; Schedule\"}");
    wait_for(true, Duration::from_millis(200));
    let engine = ffi::msp_intern(b"Engine".as_ptr() as _, 6);
    let exec = ffi::msp_intern(b"Execute".as_ptr() as _, 7);
    assert!(ffi::msp_is_enabled(20, engine), "Request is an alias of Engine");
    assert!(!ffi::msp_is_enabled(20, exec));
    assert!(!ffi::msp_event(exec, exec, 0, std::ptr::null()));
    assert!(ffi::msp_event(engine, engine, 0, std::ptr::null()));

    // timelimit stops capture and writes "enable": 0 back atomically, keeping every other byte.
    write_nonatomic(&cfg, "{\"enable\": 0}");
    wait_for(false, Duration::from_millis(200));
    let original = "{\n  \"prof_dir\" : \"PROF\",\n  \"enable\":   1 ,\n  \"timelimit\": 1,\n  \"nested\": {\"enable\": 1}\n}\n";
    let original = original.replace("PROF", &tmp.path().join("prof").display().to_string());
    std::fs::write(&cfg, &original).unwrap();
    wait_for(true, Duration::from_millis(200));
    let took = wait_for(false, Duration::from_millis(1500));
    assert!(took >= Duration::from_millis(700), "stopped too early: {took:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), original.replace("\"enable\":   1", "\"enable\":   0"));
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o640);

    // profiler_step_num: capture stops after N steps, with write-back.
    ffi::msp_set_step(10);
    std::fs::write(&cfg, "{\"enable\": 1, \"profiler_step_num\": 3}").unwrap();
    wait_for(true, Duration::from_millis(200));
    ffi::msp_set_step(11);
    ffi::msp_set_step(12);
    assert!(on());
    ffi::msp_set_step(13);
    assert!(!on(), "the step limit stops recording at once");
    assert!(!ffi::msp_event(d, d, 0, std::ptr::null()));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "{\"enable\": 0, \"profiler_step_num\": 3}");

    // API start/stop stand until the next edit of the file.
    ffi::msp_start();
    assert!(on());
    std::thread::sleep(Duration::from_millis(120));
    assert!(on());
    ffi::msp_stop();
    assert!(!on());

    // Everything recorded landed in one run directory under the home default and the prof dir.
    ffi::msp_shutdown();
    let (recs, r) = common::read_all(&home.join(".ms_server_profiler"));
    assert_eq!(r.unclean, 0);
    assert!(recs.len() >= 2, "{recs:?}");
}
