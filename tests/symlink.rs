//! Output never follows a symlink: a run directory replaced by a link is refused and nothing is
//! written through it; the service is unaffected.

mod common;

use ms_service_profiler::ffi;

#[test]
fn symlinked_run_dir_is_refused() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), "");
    std::env::set_var("SERVICE_PROF_CONFIG_PATH", &cfg);
    std::env::set_var("PROF_LOG_LEVEL", "NONE");
    assert_eq!(ffi::msp_init(), 1);
    let mut buf = vec![0u8; 4096];
    let n = ffi::msp_run_dir(buf.as_mut_ptr() as _, buf.len());
    let run_dir = std::path::PathBuf::from(String::from_utf8(buf[..n].to_vec()).unwrap());
    assert!(run_dir.starts_with(tmp.path().join("prof")));
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(run_dir.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &run_dir).unwrap();

    let d = ffi::msp_intern(b"X".as_ptr() as _, 1);
    for _ in 0..10 {
        assert!(!ffi::msp_event(d, d, 0, std::ptr::null()), "must refuse to write through the link");
    }
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // Once the link is replaced by a real directory, re-enabling capture works.
    std::fs::remove_file(&run_dir).unwrap();
    std::fs::write(&cfg, format!("{{\"enable\": 0, \"prof_dir\": \"{}\"}}", tmp.path().join("prof").display())).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::fs::write(&cfg, format!("{{\"enable\": 1, \"prof_dir\": \"{}\"}}", tmp.path().join("prof").display())).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(ffi::msp_event(d, d, 0, std::ptr::null()));
    assert!(run_dir.join("Trace_Service").is_dir());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&run_dir).unwrap().permissions().mode() & 0o777, 0o750);
}
