//! SIGKILL at random points: every record the child reported as committed is recovered, and a
//! torn tail is detected and skipped.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ms_service_profiler::ffi;
use rand::Rng;

const THREADS: usize = 3;

/// Child mode: record forever from several threads, publishing each committed sequence number.
#[test]
fn crash_child() {
    let Ok(report) = std::env::var("MSP_CRASH_REPORT") else { return };
    let f = std::fs::OpenOptions::new().read(true).write(true).open(report).unwrap();
    let map = memmap2::MmapOptions::new().len(8 * THREADS).map_raw(&f).unwrap();
    let slots: &'static [AtomicU64] = unsafe { std::slice::from_raw_parts(map.as_mut_ptr() as *const AtomicU64, THREADS) };
    std::mem::forget(map);
    assert_eq!(ffi::msp_init(), 1);
    let name = ffi::msp_intern(b"tick".as_ptr() as _, 4);
    let hs: Vec<_> = (0..THREADS)
        .map(|k| {
            std::thread::spawn(move || {
                let d = format!("t{k}");
                let domain = ffi::msp_intern(d.as_ptr() as _, d.len());
                for i in 0u64.. {
                    let j = format!("{{\"seq\":{i},\"pad\":\"{}\"}}", "x".repeat((i % 97) as usize));
                    if ffi::msp_event_json(domain, name, i + 1, j.as_ptr() as _, j.len()) {
                        slots[k].store(i + 1, Ordering::Release);
                    }
                    if i % 256 == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        // keep captures small
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing_committed() {
    let mut rng = rand::rng();
    let mut torn_seen = 0;
    let (mut committed_total, mut recovered_total) = (0u64, 0u64);
    for round in 0..8 {
        let tmp = common::tempdir();
        let cfg = common::write_config(tmp.path(), "");
        let report = tmp.path().join("report");
        std::fs::write(&report, vec![0u8; 8 * THREADS]).unwrap();
        let mut child = common::child(
            "crash_child",
            &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_CRASH_REPORT", report.to_str().unwrap()), ("PROF_LOG_LEVEL", "ERROR")],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(150..600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let reported: Vec<u64> = std::fs::read(&report).unwrap().chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        let mut got: HashMap<String, Vec<u64>> = HashMap::new();
        let mut r = ms_service_profiler::reader::Report::default();
        for fs in ms_service_profiler::reader::discover(&tmp.path().join("prof")) {
            let p = ms_service_profiler::reader::Process::open(fs).unwrap();
            r.merge(&p.scan(|it| got.entry(it.process.string(it.record.domain).to_string()).or_default().push(it.record.t0)));
        }
        assert_eq!(r.corrupt_chunks, 0, "round {round}: {:?}", r.problems);
        assert_eq!(r.unclean, 1, "a killed process is reported as not shut down cleanly");
        for (k, &n) in reported.iter().enumerate() {
            assert!(n > 0, "round {round}: thread {k} committed nothing");
            let mut s = got.remove(&format!("t{k}")).unwrap_or_default();
            s.sort_unstable();
            committed_total += n;
            recovered_total += s.len() as u64;
            // Every reported record is there (and perhaps a few committed just before the kill).
            assert!(s.len() as u64 >= n, "round {round} thread {k}: {} recovered < {n} reported", s.len());
            assert_eq!(s[..n as usize], (1..=n).collect::<Vec<_>>()[..], "round {round} thread {k}");
        }
        torn_seen += r.torn_records;
    }
    eprintln!("8 kills: {committed_total} records seen committed, {recovered_total} recovered; {torn_seen} torn records detected and skipped");
}
