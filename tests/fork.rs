//! A forked child writes its own file set and never touches its parent's.

mod common;

use ms_service_profiler::ffi;

fn emit(name: &str, n: u64) {
    let d = ffi::msp_intern(b"Fork".as_ptr() as _, 4);
    let id = ffi::msp_intern(name.as_ptr() as _, name.len());
    for i in 0..n {
        assert!(ffi::msp_event(d, id, i + 1, std::ptr::null()));
    }
}

/// Child mode: record, fork, record in both.
#[test]
fn fork_child() {
    if std::env::var_os("MSP_FORK_CHILD").is_none() {
        return;
    }
    assert_eq!(ffi::msp_init(), 1);
    emit("before", 100);
    // SAFETY: the child only records and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        emit("child", 50);
        ffi::msp_shutdown();
        unsafe { libc::_exit(0) };
    }
    let mut st = 0;
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(st, 0);
    emit("after", 70);
    ffi::msp_shutdown();
}

#[test]
fn forked_child_gets_its_own_files() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), "");
    let out = common::child("fork_child", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_FORK_CHILD", "1")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let prof = tmp.path().join("prof");
    let sets = ms_service_profiler::reader::discover(&prof);
    assert_eq!(sets.len(), 2, "{sets:?}");
    let (recs, r) = common::read_all(&prof);
    assert_eq!(r.records, 220);
    assert_eq!(r.unclean, 0);
    let pids: std::collections::BTreeSet<u64> = recs.iter().map(|v| v["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    let by = |pid: u64| {
        let mut c: std::collections::BTreeMap<String, usize> = Default::default();
        for v in recs.iter().filter(|v| v["pid"] == pid) {
            *c.entry(v["name"].as_str().unwrap().to_string()).or_default() += 1;
        }
        c
    };
    let (a, b) = (by(*pids.first().unwrap()), by(*pids.last().unwrap()));
    let (parent, child) = if a.contains_key("before") { (a, b) } else { (b, a) };
    assert_eq!(parent.into_iter().collect::<Vec<_>>(), vec![("after".into(), 70), ("before".into(), 100)]);
    assert_eq!(child.into_iter().collect::<Vec<_>>(), vec![("child".into(), 50)]);
    // Both file sets are in the same run directory.
    assert_eq!(sets[0].meta.parent(), sets[1].meta.parent());
}
