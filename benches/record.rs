//! Cost per record on the hot path, and sustained throughput.
//!
//! * `record/<path>/<threads>`: ns per record through the Rust entry point (`ffi::msp_span`
//!   called in-crate) and through the C ABI of the built cdylib (loaded with libloading, called
//!   through a function pointer exactly as a C caller does), on 1 and 2 threads. The capture runs
//!   with the overwrite policy so the benchmark can run indefinitely without filling the disk.
//! * `sustained/<threads>`: 20 M records into a drop-policy ring sized for them, with the spare
//!   segment maintained in the background as the control thread does; reports records/s and
//!   asserts zero drops.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ms_service_profiler::ffi::{self, MspAttr, MspPayload, MspStr};

type SpanFn = unsafe extern "C" fn(u32, u32, u64, u64, *const MspPayload) -> bool;

fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cfg.json");
    std::fs::write(&cfg, format!(r#"{{"enable": 1, "prof_dir": "{}", "ring_size_mb": 256, "ring_full_policy": "overwrite"}}"#, tmp.path().display())).unwrap();
    std::env::set_var("SERVICE_PROF_CONFIG_PATH", &cfg);
    std::env::set_var("PROF_LOG_LEVEL", "WARNING");
    assert_eq!(ffi::msp_init(), 1);
    tmp
}

/// Run `per_thread` records on each of `threads` threads; wall time for all.
fn run(threads: usize, per_thread: u64, f: Arc<dyn Fn(u64) + Send + Sync>) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (b, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                b.wait();
                for i in 0..per_thread {
                    f(i);
                }
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    for h in hs {
        h.join().unwrap();
    }
    t.elapsed()
}

fn span_with(f: SpanFn) -> Arc<dyn Fn(u64) + Send + Sync> {
    let d = ffi::msp_intern(c"Execute".as_ptr(), 7);
    let n = ffi::msp_intern(c"forward".as_ptr(), 7);
    let k = ffi::msp_intern(c"batch_size".as_ptr(), 10);
    Arc::new(move |i| {
        let attrs = [MspAttr { key: k, kind: ffi::MSP_ATTR_INT, i: i as i64, f: 0.0, s: std::ptr::null(), len: 0 }];
        let rids = [MspStr { ptr: c"req-1".as_ptr(), len: 5 }];
        let p = MspPayload { attrs: attrs.as_ptr(), n_attrs: 1, rids: rids.as_ptr(), n_rids: 1, json: std::ptr::null(), json_len: 0 };
        let t = ffi::msp_now();
        // SAFETY: a valid payload.
        unsafe { f(d, n, t, t + 1000, &p) };
    })
}

fn record(c: &mut Criterion) {
    let _tmp = setup();
    let lib = unsafe { libloading::Library::new(cdylib()).unwrap() };
    let c_span: SpanFn = unsafe { *lib.get::<SpanFn>(b"msp_span").unwrap() };
    // The cdylib is a second copy of the recorder in this process: initialise it too.
    let init: unsafe extern "C" fn() -> i32 = unsafe { *lib.get(b"msp_init").unwrap() };
    assert_eq!(unsafe { init() }, 1);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    for (label, f) in [("rust", ffi::msp_span as SpanFn), ("c_abi", c_span)] {
        for threads in [1usize, 2] {
            let body = span_with(f);
            g.bench_function(BenchmarkId::new(label, threads), |b| {
                b.iter_custom(|iters| {
                    let per = (iters / threads as u64).max(1);
                    run(threads, per, body.clone()) / threads as u32
                })
            });
        }
    }
    // What the Python shim calls: a span with a JSON attribute object.
    let d = ffi::msp_intern(c"Schedule".as_ptr(), 8);
    let n = ffi::msp_intern(c"batchFrameworkProcessing".as_ptr(), 24);
    let json = br#"{"rid":[{"rid":"req-1","iter":3,"type":1}],"batch_type":"Decode"}"#;
    g.bench_function("rust_span_json/1", |b| {
        b.iter(|| {
            let t = ffi::msp_now();
            ffi::msp_span_json(d, n, t, t + 1, json.as_ptr() as _, json.len())
        })
    });
    g.bench_function("disabled_check", |b| {
        let w = ffi::msp_state_word();
        b.iter(|| unsafe { std::ptr::read_volatile(w) } & ffi::MSP_STATE_ENABLED)
    });
    g.finish();
}

fn cdylib() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("libms_service_profiler.so")
}

fn sustained(c: &mut Criterion) {
    use ms_service_profiler::files::fs::Dir;
    use ms_service_profiler::files::meta::{Counter, MetaFile, ProcessInfo};
    use ms_service_profiler::record::{Attr, Kind, Spec, Value};
    use ms_service_profiler::ring::{Geometry, Ring};
    let mut g = c.benchmark_group("sustained");
    g.sample_size(10);
    const N: u64 = 20_000_000;
    g.throughput(Throughput::Elements(N));
    for threads in [1usize, 2] {
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let tmp = tempfile::tempdir().unwrap();
                    let dir = Dir::create_all(tmp.path()).unwrap();
                    let meta = MetaFile::create(dir.create_new("s.meta").unwrap(), &ProcessInfo::default()).unwrap();
                    let geo = Geometry { segment_bytes: 128 << 20, total_bytes: 2 << 30, chunk_bytes: 64 << 10, overwrite: false };
                    let ring = Arc::new(Ring::open(dir, "s".into(), geo, meta.counters().clone()).unwrap());
                    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let (r2, s2) = (ring.clone(), stop.clone());
                    let m = std::thread::spawn(move || {
                        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                            r2.maintain();
                            std::thread::park_timeout(Duration::from_millis(50));
                        }
                    });
                    ring.set_maintainer(m.thread().clone());
                    let r3 = ring.clone();
                    total += run(
                        threads,
                        N / threads as u64,
                        Arc::new(move |i| {
                            let attrs = [Attr { key: 3, value: Value::Int(i as i64) }];
                            let spec = Spec {
                                kind: Kind::Span,
                                flags: 0,
                                t0: i,
                                t1: i + 5,
                                domain: 1,
                                name: 2,
                                attrs: attrs.iter().copied(),
                                rids: std::iter::empty(),
                                json: b"",
                            };
                            r3.write(&spec);
                        }),
                    );
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    m.thread().unpark();
                    m.join().unwrap();
                    let dropped = meta.counters().get(Counter::Dropped).load(std::sync::atomic::Ordering::Relaxed);
                    assert_eq!(dropped, 0, "sustained run dropped records");
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, record, sustained);
criterion_main!(benches);
