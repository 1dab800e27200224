//! Reading a capture while it is being written: every read succeeds, sees only committed
//! records, never disturbs the writer; the final read has everything.

mod common;

use std::time::{Duration, Instant};

use ms_service_profiler::ffi;
use ms_service_profiler::reader::{self, Process};

const PER_THREAD: u64 = 400_000;

/// Child mode: two threads write PER_THREAD events each, throttled to last about a second.
#[test]
fn live_writer() {
    if std::env::var_os("MSP_LIVE_CHILD").is_none() {
        return;
    }
    assert_eq!(ffi::msp_init(), 1);
    let hs: Vec<_> = (0..2u64)
        .map(|t| {
            std::thread::spawn(move || {
                let d = ffi::msp_intern(format!("w{t}").as_ptr() as _, 2);
                for i in 0..PER_THREAD {
                    let j = format!("{{\"i\":{i}}}");
                    assert!(ffi::msp_event_json(d, d, i + 1, j.as_ptr() as _, j.len()));
                    if i % 2000 == 0 {
                        std::thread::sleep(Duration::from_millis(4));
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let mut c = ffi::MspCounters::default();
    ffi::msp_counters(&mut c);
    assert_eq!(c.records_dropped, 0);
    ffi::msp_shutdown();
}

fn count(root: &std::path::Path) -> (u64, reader::Report) {
    let mut total = reader::Report::default();
    let mut n = 0;
    for fs in reader::discover(root) {
        let p = Process::open(fs).unwrap();
        let mut last = [0u64; 2];
        let r = p.scan(|it| {
            // Strings interned after the meta file was first read are known too.
            let d = it.process.string(it.record.domain);
            assert!(d == "w0" || d == "w1", "domain {d:?}");
            let k = (d == "w1") as usize;
            // Per-thread order holds even mid-write.
            assert!(it.record.t0 > last[k]);
            last[k] = it.record.t0;
            n += 1;
        });
        total.merge(&r);
    }
    (n, total)
}

#[test]
fn reading_while_writing() {
    let tmp = common::tempdir();
    let cfg = common::write_config(tmp.path(), "");
    let mut child = common::child("live_writer", &[("SERVICE_PROF_CONFIG_PATH", cfg.to_str().unwrap()), ("MSP_LIVE_CHILD", "1")]).spawn().unwrap();
    let prof = tmp.path().join("prof");
    let (mut reads, mut last) = (0, 0);
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(60));
        let (n, r) = count(&prof);
        assert_eq!(r.corrupt_chunks, 0, "{:?}", r.problems);
        assert!(n >= last, "a later read sees at least as much");
        last = n;
        reads += 1;
    }
    assert!(child.wait().unwrap().success());
    let (n, r) = count(&prof);
    assert_eq!(n, 2 * PER_THREAD);
    assert_eq!((r.dropped, r.unclean, r.torn_records), (0, 0, 0));
    assert!(reads > 3, "only {reads} live reads happened");
}
