//! Fault injection against the recorder: a full disk (a small tmpfs), a file-size limit
//! (RLIMIT_FSIZE), the run directory removed mid-capture, and the config file deleted, replaced
//! by a symlink / a FIFO / a directory, or filled with garbage. In every case the traced process
//! carries on unharmed (it exits normally), every record it saw committed is recovered, and the
//! loss is counted and reported by `parse`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ms_service_profiler::ffi;
use ms_service_profiler::reader::{self, Process};

const RING: &str = ",\n    \"ring_size_mb\": 1,\n    \"ring_total_mb\": 64,\n    \"ring_chunk_kb\": 16";

/// Child: record `MSP_FAULT_N` events (each ~200 bytes), counting the committed ones in the
/// report file, optionally under an RLIMIT_FSIZE of `MSP_FAULT_FSIZE` bytes; then shut down.
#[test]
fn fault_child() {
    let Ok(report) = std::env::var("MSP_FAULT_REPORT") else { return };
    if let Ok(lim) = std::env::var("MSP_FAULT_FSIZE") {
        let lim: u64 = lim.parse().unwrap();
        let r = libc::rlimit { rlim_cur: lim, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &r) }, 0);
    }
    let n: u64 = std::env::var("MSP_FAULT_N").unwrap().parse().unwrap();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(report).unwrap();
    let map = memmap2::MmapOptions::new().len(16).map_raw(&f).unwrap();
    let slots: &[AtomicU64] = unsafe { std::slice::from_raw_parts(map.as_mut_ptr() as *const AtomicU64, 2) };
    assert_eq!(ffi::msp_init(), 1);
    let d = ffi::msp_intern(b"Fault".as_ptr() as _, 5);
    let pause = std::env::var("MSP_FAULT_PAUSE_AT").ok().map(|v| v.parse::<u64>().unwrap());
    let mut committed = 0;
    for i in 0..n {
        let j = format!("{{\"seq\":{i},\"pad\":\"{}\"}}", "y".repeat(150));
        if ffi::msp_event_json(d, d, i + 1, j.as_ptr() as _, j.len()) {
            committed += 1;
        }
        slots[0].store(committed, Ordering::Release);
        slots[1].store(i + 1, Ordering::Release);
        if pause == Some(i) {
            std::thread::sleep(Duration::from_millis(700)); // the parent injects the fault now
        }
    }
    ffi::msp_shutdown();
}

struct Run {
    committed: u64,
    status: std::process::ExitStatus,
    stderr: String,
}

fn run_child(cfg: &Path, report: &Path, n: u64, env: &[(&str, &str)], during: impl FnOnce(&Path)) -> Run {
    std::fs::write(report, [0u8; 16]).unwrap();
    let mut c = common::child("fault_child", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_FAULT_REPORT", report.to_str().unwrap())]);
    c.env("MSP_FAULT_N", n.to_string()).env("PROF_LOG_LEVEL", "WARNING").stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    during(report);
    let out = child.wait_with_output().unwrap();
    let b = std::fs::read(report).unwrap();
    Run { committed: u64::from_le_bytes(b[..8].try_into().unwrap()), status: out.status, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

/// Every `seq` recovered under `root`, and the processes' meta.
fn recovered(root: &Path) -> (Vec<u64>, Vec<reader::ProcessMeta>, reader::Report) {
    let mut seqs = Vec::new();
    let mut metas = Vec::new();
    let mut total = reader::Report::default();
    for fs in reader::discover(root) {
        let p = Process::open(fs).unwrap();
        total.merge(&p.scan(|it| seqs.push(it.record.t0)));
        metas.push(p.meta);
    }
    seqs.sort_unstable();
    (seqs, metas, total)
}

fn parse_summary(root: &Path, out: &Path) -> String {
    let bin = env!("CARGO_BIN_EXE_msserviceprofiler");
    let o = Command::new(bin).args(["parse", "--input-path"]).arg(root).arg("--output-path").arg(out).output().unwrap();
    assert!(o.status.success(), "parse failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"]).arg(at).status().is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn check_recovered(run: &Run, seqs: &[u64]) {
    assert!(run.status.success(), "the traced process was hurt: {:?}\n{}", run.status, run.stderr);
    assert!(run.committed > 0);
    // The writer reports committed records by their seq (1-based, in order, until the fault).
    let want: Vec<u64> = (1..=run.committed).collect();
    assert!(seqs.len() as u64 >= run.committed, "{} recovered < {} committed", seqs.len(), run.committed);
    assert_eq!(&seqs[..run.committed as usize], &want[..], "every committed record is recovered, in order");
}

#[test]
fn disk_full_stops_capture_cleanly() {
    let tmp = common::tempdir();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("small"), "2600k") else {
        panic!("cannot mount a tmpfs (this test needs root; run it as root or in a container with CAP_SYS_ADMIN)");
    };
    let cfg = tmp.path().join("ms_service_profiler_config.json");
    std::fs::write(&cfg, format!("{{\n    \"enable\": 1,\n    \"prof_dir\": \"{}\"{RING}\n}}\n", fs.0.join("prof").display())).unwrap();
    // ~25k records of ~224 bytes: 5.6 MB, more than two 1 MiB segments fit.
    let run = run_child(&cfg, &tmp.path().join("report"), 25_000, &[], |_| {});
    let (seqs, metas, r) = recovered(&fs.0.join("prof"));
    check_recovered(&run, &seqs);
    assert!(run.committed < 25_000, "the disk was never full");
    assert_eq!(metas.len(), 1);
    assert_eq!(metas[0].write_error, Some(libc::ENOSPC as u32), "the meta header records ENOSPC");
    assert!(metas[0].clean, "the process shut down cleanly");
    assert_eq!(r.dropped, 25_000 - seqs.len() as u64, "every record not kept is counted as dropped");
    assert!(run.stderr.contains("cannot create ring segment"), "one clear warning: {}", run.stderr);
    let text = parse_summary(&fs.0.join("prof"), &tmp.path().join("out"));
    assert!(text.contains("No space left on device"), "parse reports the full disk: {text}");
    let conn = rusqlite::Connection::open(tmp.path().join("out/profiler.db")).unwrap();
    let (dropped, we): (i64, String) = conn.query_row("SELECT dropped, write_error FROM losses", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(dropped as u64, r.dropped);
    assert!(we.contains("No space left"), "{we}");
}

#[test]
fn file_size_limit_never_kills_the_process() {
    // Without the RLIMIT_FSIZE check, growing a file past the limit raises SIGXFSZ (fatal).
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), RING);
    // The limit admits the 4 KiB meta file, not a 1 MiB ring segment.
    let run = run_child(&cfg, &tmp.path().join("report"), 3_000, &[("MSP_FAULT_FSIZE", "500000")], |_| {});
    assert!(run.status.success(), "the traced process was hurt: {:?}\n{}", run.status, run.stderr);
    assert_eq!(run.committed, 0);
    let (seqs, metas, r) = recovered(&tmp.path().join("prof"));
    assert!(seqs.is_empty());
    assert_eq!(metas[0].write_error, Some(libc::EFBIG as u32), "the meta header records EFBIG");
    assert_eq!(r.dropped, 3_000, "every record is counted as dropped");
    assert!(run.stderr.contains("cannot open capture files"), "one clear warning: {}", run.stderr);
}

#[test]
fn run_directory_removed_while_capturing() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), RING);
    let prof = tmp.path().join("prof");
    let run = run_child(&cfg, &tmp.path().join("report"), 12_000, &[("MSP_FAULT_PAUSE_AT", "2000")], |report| {
        let t0 = Instant::now();
        while std::fs::read(report).map(|b| u64::from_le_bytes(b[8..16].try_into().unwrap())).unwrap_or(0) < 2000 {
            assert!(t0.elapsed() < Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::remove_dir_all(&prof).unwrap();
    });
    assert!(run.status.success(), "the traced process was hurt: {:?}\n{}", run.status, run.stderr);
    assert!(run.committed >= 2000, "records kept in the (unlinked) mapping until the segment is used up");
    assert!(run.committed < 12_000, "no new segment can be created in a removed directory");
    assert!(run.stderr.contains("cannot create ring segment"), "one clear warning: {}", run.stderr);
}

/// Child: capture on; the parent damages the config file in several ways, each time checking
/// (through the report file) that the child still records and that its state did not change.
#[test]
fn config_fault_child() {
    let Ok(dir) = std::env::var("MSP_CFG_FAULT_DIR") else { return };
    let dir = PathBuf::from(dir);
    assert_eq!(ffi::msp_init(), 1);
    let d = ffi::msp_intern(b"Cfg".as_ptr() as _, 3);
    assert!(ffi::msp_event(d, d, 0, std::ptr::null()), "capture is on at start");
    std::fs::write(dir.join("ready"), "").unwrap();
    let step = |name: &str| {
        // wait for the parent to inject fault `name`, then record (and intern new strings, which
        // takes the control lock) for a while: nothing may block or change the capture state
        let go = dir.join(format!("go-{name}"));
        let t0 = Instant::now();
        while !go.exists() {
            assert!(t0.elapsed() < Duration::from_secs(60), "the parent went away");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(250)); // several control ticks
        let t0 = Instant::now();
        let on = unsafe { *ffi::msp_state_word() } & 1 == 1;
        let s = format!("after-{name}");
        let id = ffi::msp_intern(s.as_ptr() as _, s.len());
        let kept = ffi::msp_event(d, id, 0, std::ptr::null());
        assert!(t0.elapsed() < Duration::from_secs(1), "{name}: a hook thread was blocked");
        std::fs::write(dir.join(format!("done-{name}")), format!("{on} {kept}")).unwrap();
    };
    for name in ["deleted", "symlink", "fifo", "directory", "garbage", "huge", "off"] {
        step(name);
    }
    ffi::msp_shutdown();
}

#[test]
fn config_file_faults_keep_the_state() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), "");
    let child =
        common::child("config_fault_child", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_CFG_FAULT_DIR", tmp.path().to_str().unwrap())])
            .env("PROF_LOG_LEVEL", "WARNING")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let t0 = Instant::now();
    while !tmp.path().join("ready").exists() {
        assert!(t0.elapsed() < Duration::from_secs(30), "the child did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let other = tmp.path().join("other.json");
    std::fs::write(&other, "{\"enable\": 0}").unwrap();
    let inject = |name: &str, f: &dyn Fn()| -> String {
        let _ = std::fs::remove_file(&cfg).or_else(|_| std::fs::remove_dir(&cfg));
        f();
        std::fs::write(tmp.path().join(format!("go-{name}")), "").unwrap();
        let done = tmp.path().join(format!("done-{name}"));
        let t0 = Instant::now();
        while !done.exists() {
            assert!(t0.elapsed() < Duration::from_secs(30), "{name}: the child stopped responding");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(20));
        std::fs::read_to_string(&done).unwrap()
    };
    assert_eq!(inject("deleted", &|| {}), "true true", "deleted: capture stays on");
    assert_eq!(inject("symlink", &|| std::os::unix::fs::symlink(&other, &cfg).unwrap()), "true true", "a symlink is not followed");
    let c = std::ffi::CString::new(cfg.to_str().unwrap()).unwrap();
    assert_eq!(inject("fifo", &|| assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0)), "true true", "a FIFO neither blocks nor changes state");
    assert_eq!(inject("directory", &|| std::fs::create_dir(&cfg).unwrap()), "true true");
    assert_eq!(inject("garbage", &|| std::fs::write(&cfg, b"\xff\xfe{\"enable\": 0\x00\x01garbage").unwrap()), "true true");
    assert_eq!(
        inject("huge", &|| std::fs::write(&cfg, format!("{{\"enable\": 0, \"pad\": \"{}\"}}", "z".repeat(3 << 20))).unwrap()),
        "true true",
        "an oversized file is not read"
    );
    // The control loop is alive: a valid edit still takes effect.
    assert_eq!(inject("off", &|| std::fs::write(&cfg, "{\"enable\": 0}").unwrap()), "false false");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for want in ["is a symlink; not read", "is not a regular file", "larger than"] {
        assert!(err.contains(want), "warning {want:?} missing: {err}");
    }
}
