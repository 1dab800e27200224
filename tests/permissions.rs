//! Permissions and symlinks, whatever the umask: every directory the recorder and the parser
//! create is 0750 and every file 0640; no output is ever written through a symlink planted in
//! the output directory (file or sub-directory), and the symlink's target is left untouched.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use ms_service_profiler::ffi;

/// Child: umask 0, record a little, shut down.
#[test]
fn perm_child() {
    if std::env::var("MSP_PERM_CHILD").is_err() {
        return;
    }
    unsafe { libc::umask(0) };
    assert_eq!(ffi::msp_init(), 1);
    let d = ffi::msp_intern(b"Perm".as_ptr() as _, 4);
    let fwd = ffi::msp_intern(b"forward".as_ptr() as _, 7);
    for i in 0..100 {
        assert!(ffi::msp_event(d, d, i + 1, std::ptr::null()));
        assert!(ffi::msp_span(d, fwd, 1000 * i + 1, 1000 * i + 500, std::ptr::null()));
    }
    ffi::msp_shutdown();
}

fn modes(root: &Path, out: &mut Vec<(String, u32, bool)>) {
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path().display().to_string(), m.mode() & 0o7777, m.is_dir()));
        if m.is_dir() {
            modes(&e.path(), out);
        }
    }
}

fn parse(input: &Path, out: &Path) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_msserviceprofiler"));
    c.args(["parse", "--input-path"]).arg(input).arg("--output-path").arg(out);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        })
    };
    c.output().unwrap()
}

#[test]
fn modes_are_exact_and_symlinks_never_followed() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), "");
    let st = common::child("perm_child", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_PERM_CHILD", "1"), ("PROF_LOG_LEVEL", "ERROR")])
        .status()
        .unwrap();
    assert!(st.success());
    let prof = tmp.path().join("prof");
    let mut all = Vec::new();
    modes(&prof, &mut all);
    assert!(all.len() >= 4, "{all:?}");
    for (p, mode, dir) in &all {
        assert_eq!(*mode, if *dir { 0o750 } else { 0o640 }, "{p} under umask 0");
    }

    // A clean parse under umask 0.
    let out = tmp.path().join("out");
    let o = parse(&prof, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut all = Vec::new();
    modes(&out, &mut all);
    assert!(all.iter().any(|(p, _, _)| p.ends_with("profiler.db")), "{all:?}");
    for (p, mode, dir) in &all {
        assert_eq!(*mode, if *dir { 0o750 } else { 0o640 }, "{p} under umask 0");
    }

    // Symlinks planted in the output directory: a file and a sub-directory.
    let victim_dir = tmp.path().join("victim_dir");
    std::fs::create_dir(&victim_dir).unwrap();
    std::fs::set_permissions(&victim_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let out2 = tmp.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    std::os::unix::fs::symlink(&victim, out2.join("chrome_tracing.json")).unwrap();
    std::os::unix::fs::symlink(&victim, out2.join("profiler.db")).unwrap();
    std::os::unix::fs::symlink(&victim_dir, out2.join("span_info")).unwrap();
    let o = parse(&prof, &out2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "a symlinked output file was followed");
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0, "written through a symlinked directory");
    assert_eq!(std::fs::metadata(&victim_dir).unwrap().mode() & 0o7777, 0o755, "a symlinked directory's target was chmod-ed");
    for f in ["chrome_tracing.json", "profiler.db"] {
        let m = std::fs::symlink_metadata(out2.join(f)).unwrap();
        assert!(m.is_file() && m.mode() & 0o777 == 0o640, "{f}: replaced by a regular 0640 file");
    }
    assert!(!o.status.success() && err.contains("symlink"), "the symlinked span_info/ is refused with a message: {err}");
    // The whole output path through a symlink is refused up front (exit 2).
    let link = tmp.path().join("out_link");
    std::os::unix::fs::symlink(&victim_dir, &link).unwrap();
    let o = parse(&prof, &link.join("x"));
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("symlink"));
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);
}
