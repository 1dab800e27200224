//! `msserviceprofiler parse`: reads every process's capture files under one or more run
//! directories (in parallel, streaming), builds the model (requests, batches, KV cache, forward
//! passes; engine ids mapped back to API ids) and writes the outputs of docs/OUTPUTS.md.

pub mod build;
pub mod collect;
pub mod export;
pub mod import;
pub mod model;
pub mod output;
pub mod time;
pub mod trim;
pub mod trust;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::reader::{self, Process, Report};
use build::Model;
use collect::{read_process, ProcResult};
use export::trace::TraceOut;
use model::partial::Partial;
use model::process::{assign_ids, ProcInfo, Role};

/// An output format of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `profiler.db`.
    Db,
    /// The CSV files.
    Csv,
    /// `chrome_tracing.json`.
    Json,
    /// `trace.perfetto-trace` (Perfetto protobuf; not in the default set).
    Perfetto,
}

impl Format {
    /// From a `--format` word.
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "db" => Some(Format::Db),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "perfetto" | "pftrace" | "proto" => Some(Format::Perfetto),
            _ => None,
        }
    }
}

/// What to parse and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Root to scan for capture files (recursively).
    pub input: PathBuf,
    /// Output directory (created 0750).
    pub output: PathBuf,
    /// Formats to write.
    pub formats: Vec<Format>,
    /// Extra span names for `span_info/`.
    pub spans: Vec<String>,
    /// Render datetimes at this UTC offset instead of each capture host's.
    pub timezone: Option<i32>,
    /// Worker threads (0 = number of CPUs).
    pub jobs: usize,
    /// Show a progress line on stderr.
    pub progress: bool,
}

/// Why a parse failed, with its exit code.
#[derive(Debug)]
pub enum Error {
    /// Bad arguments or paths (exit 2).
    Usage(String),
    /// No capture files found (exit 3).
    NoInput(String),
    /// Writing an output failed (exit 1).
    Io(String),
}

impl Error {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::NoInput(_) => 3,
            Error::Io(_) => 1,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Usage(s) | Error::NoInput(s) | Error::Io(s) => f.write_str(s),
        }
    }
}

/// What a parse did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Records read.
    pub records: u64,
    /// Processes read.
    pub processes: usize,
    /// Distinct hosts.
    pub hosts: usize,
    /// Requests found.
    pub requests: usize,
    /// Reader totals (drops, corruption, problems).
    pub report: Report,
    /// Meta files that could not be opened.
    pub unreadable: Vec<String>,
    /// Losses per process (also the `losses` table of profiler.db).
    pub losses: Vec<export::losses::Row>,
    /// Files written (relative to the output directory).
    pub outputs: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
    /// Device data totals (kernels, API calls, usage samples, MSPTI drops), when any.
    pub device: Option<String>,
    /// Imported timelines (torch profiler, msprof) and their problems.
    pub imports: Vec<String>,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{what}: {e}"))
}

/// Check the input and output paths (symlinks refused, input must be a directory).
pub fn validate(opts: &Options) -> Result<(), Error> {
    if let Some(l) = output::symlink_in(&opts.input) {
        return Err(Error::Usage(format!(
            "input path {} goes through the symlink {}; refusing to read through symlinks (pass the real path)",
            opts.input.display(),
            l.display()
        )));
    }
    match std::fs::metadata(&opts.input) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::Usage(format!("input path {} is not a directory", opts.input.display()))),
        Err(e) => return Err(Error::Usage(format!("input path {}: {e}", opts.input.display()))),
    }
    trust::check_root(&opts.input).map_err(Error::Usage)?;
    if let Some(l) = output::symlink_in(&opts.output) {
        return Err(Error::Usage(format!(
            "output path {} goes through the symlink {}; refusing to write through symlinks",
            opts.output.display(),
            l.display()
        )));
    }
    if opts.output.exists() && !opts.output.is_dir() {
        return Err(Error::Usage(format!("output path {} exists and is not a directory", opts.output.display())));
    }
    if opts.formats.is_empty() {
        return Err(Error::Usage("no output format".into()));
    }
    Ok(())
}

fn progress_thread(total: u64, count: Arc<AtomicU64>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let n = count.load(Ordering::Relaxed);
            let rate = n as f64 / t0.elapsed().as_secs_f64().max(1e-3);
            eprint!("\r\x1b[2Kreading {} process(es): {n} records, {:.0} k/s", total, rate / 1e3);
        }
        eprint!("\r\x1b[2K");
    })
}

/// Run a parse.
pub fn run(opts: &Options) -> Result<Summary, Error> {
    let t0 = Instant::now();
    if let Ok(mut s) = START.lock() {
        *s = Some(t0);
    }
    validate(opts)?;
    let sets = reader::discover(&opts.input);
    if sets.is_empty() {
        return Err(Error::NoInput(format!("no capture files (ms_service_*.meta) under {}", opts.input.display())));
    }
    let mut summary = Summary::default();
    let mut procs: Vec<Process> = Vec::new();
    for fs in sets {
        if let Err(e) = trust::check_set(&fs) {
            summary.unreadable.push(e);
            continue;
        }
        match Process::open(fs) {
            Ok(p) => procs.push(p),
            Err(e) => summary.unreadable.push(e),
        }
    }
    if procs.is_empty() {
        return Err(Error::NoInput(format!("no readable capture under {}: {}", opts.input.display(), summary.unreadable.join("; "))));
    }
    let mut infos: Vec<ProcInfo> = procs.iter().enumerate().map(|(i, p)| ProcInfo::new(i, &p.meta, opts.timezone)).collect();
    assign_ids(&mut infos);
    output::create_dir(&opts.output).map_err(io("creating the output directory"))?;
    let want = |f: Format| opts.formats.contains(&f);
    let mut spans: rustc_hash::FxHashSet<String> = export::span_info::DEFAULT_SPANS.iter().map(|s| s.to_string()).collect();
    spans.extend(opts.spans.iter().cloned());

    let db = if want(Format::Db) {
        Some(export::db::Db::start(&opts.output.join("profiler.db")).map_err(|e| Error::Io(format!("profiler.db: {e}")))?)
    } else {
        None
    };
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let bar = opts.progress.then(|| progress_thread(procs.len() as u64, count.clone(), done.clone()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs).build().map_err(|e| Error::Io(e.to_string()))?;
    // Work items: one per ring segment (a process's segments are read in parallel; the model
    // is order-independent and the parts are merged).
    let parts: Vec<(usize, usize, Process)> = procs
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let segs = if p.files.segments.is_empty() { vec![None] } else { p.files.segments.iter().cloned().map(Some).collect() };
            segs.into_iter().enumerate().map(move |(k, seg)| {
                let mut files = p.files.clone();
                files.segments = seg.into_iter().collect();
                (i, k, Process { meta: p.meta.clone(), files })
            })
        })
        .collect();
    let flows = want(Format::Json) || want(Format::Db);
    // The traces are written while reading; only the tables need the rows.
    let rows = want(Format::Csv) || want(Format::Db);
    let mut results: Vec<(usize, usize, ProcResult)> = pool.install(|| {
        parts
            .par_iter()
            .enumerate()
            .map(|(w, (i, k, p))| {
                let spill = rows.then(|| (opts.output.join(format!(".batches.{w}.spill")), w as u32));
                let flow_spill = flows.then(|| opts.output.join(format!(".flows.{w}.spill")));
                let info = &infos[*i];
                let frag = want(Format::Json).then(|| opts.output.join(format!(".chrome_tracing.{}.{}.part", info.index, k)));
                let pf = want(Format::Perfetto).then(|| opts.output.join(format!(".trace.{}.{}.part", info.index, k)));
                let dbp = db.is_some().then(|| opts.output.join(format!(".profiler_db.{}.{}.part", info.index, k)));
                let trace = if frag.is_some() || dbp.is_some() || pf.is_some() {
                    match TraceOut::new(info.trace_pid, info.offset_s, frag, dbp, pf) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            let mut r = read_process(p, info, rows.then_some(&spans), None, None, None, &count);
                            r.io_error = Some(e.to_string());
                            return (*i, *k, r);
                        }
                    }
                } else {
                    None
                };
                let read =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_process(p, info, rows.then_some(&spans), trace, flow_spill, spill, &count)));
                let mut r = read.unwrap_or_else(|e| {
                    let what = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                    let mut report = Report::default();
                    report.problems.push(format!("{} part {k}: internal error while reading ({what}); this part was skipped", p.files.stem));
                    ProcResult {
                        partial: Partial::default(),
                        report,
                        domains: 0,
                        fragment: None,
                        threads: Vec::new(),
                        perfetto: None,
                        counters: Vec::new(),
                        db_part: None,
                        spill: None,
                        io_error: None,
                    }
                });
                if *k > 0 {
                    // Per-process counters and meta problems are reported by part 0 only.
                    let rep = &mut r.report;
                    rep.dropped = 0;
                    rep.overwritten = 0;
                    rep.oversize = 0;
                    rep.device_dropped = 0;
                    rep.hook_errors = 0;
                    rep.expr_errors = 0;
                    rep.unclean = 0;
                    rep.problems.drain(..p.meta.problems.len().min(rep.problems.len()));
                }
                (*i, *k, r)
            })
            .collect()
    });
    stage("read");
    let n_parts = parts.len();
    drop(parts);
    done.store(true, Ordering::Relaxed);
    if let Some(b) = bar {
        let _ = b.join();
    }
    let mut partial = Partial::for_merging(results.iter().map(|r| &r.2.partial));
    // The id map first (API ids and links of every part), so that merging folds engine ids
    // into their API ids at once.
    let links: Vec<(String, String)> = results.iter_mut().flat_map(|r| std::mem::take(&mut r.2.partial.links)).collect();
    let map = model::rid::RidMap::build(results.iter().flat_map(|r| r.2.partial.requests.iter().filter(|(_, a)| a.api).map(|(k, _)| k)), &links);
    drop(links);
    let mut domains = vec![0u8; infos.len()];
    let mut threads: Vec<Vec<export::trace::ThreadInfo>> = vec![Vec::new(); infos.len()];
    let mut fragments = Vec::new();
    let mut pf_fragments = Vec::new();
    let mut db_parts = Vec::new();
    let mut spills = Vec::new();
    let mut counters: Vec<Vec<String>> = vec![Vec::new(); infos.len()];
    let mut per_process = vec![Report::default(); infos.len()];
    for (i, _, r) in results {
        if let Some(e) = r.io_error {
            for w in 0..n_parts {
                let _ = std::fs::remove_file(opts.output.join(format!(".batches.{w}.spill")));
                let _ = std::fs::remove_file(opts.output.join(format!(".flows.{w}.spill")));
            }
            return Err(Error::Io(format!("writing trace output: {e}")));
        }
        summary.report.merge(&r.report);
        per_process[i].merge(&r.report);
        domains[i] |= r.domains;
        for t in r.threads {
            if !threads[i].iter().any(|x| x.tid == t.tid) {
                threads[i].push(t);
            }
        }
        fragments.extend(r.fragment);
        pf_fragments.extend(r.perfetto);
        db_parts.extend(r.db_part);
        spills.push(r.spill);
        for c in r.counters {
            if !counters[i].contains(&c) {
                counters[i].push(c);
            }
        }
        partial.merge(r.partial, &map);
        trim::release_free_heap();
    }
    for t in threads.iter_mut() {
        t.sort_by_key(|x| x.tid);
    }
    let losses = export::losses::rows(&procs, &per_process);
    let roles: Vec<Role> = infos.iter().zip(&domains).map(|(info, d)| info.meta_role.unwrap_or_else(|| Role::infer(*d))).collect();
    summary.records = summary.report.records;
    summary.processes = infos.len();
    summary.hosts = infos.iter().map(|p| p.hostname.as_str()).collect::<HashSet<_>>().len();
    stage("merged");
    let mut m = Model::build(infos, roles, threads, partial, map);
    stage("model built");
    trim::release_free_heap();
    m.spill = match model::spill::SpillStore::open(spills) {
        Ok(s) => s,
        Err(e) => {
            m.flows.remove();
            return Err(io("reading the batch spill files")(e));
        }
    };
    summary.requests = m.requests.len();
    summary.device = m.device.summary_line();
    // Timelines of other profilers (torch profiler, msprof): more trace fragments and slices.
    let imported = import::run(&opts.input, &opts.output, &procs, &m, want(Format::Json), db.as_ref().map(|d| d.sender()));
    fragments.extend(imported.fragments);
    summary.imports = imported.notes;
    let out = &opts.output;
    // The exporters read the immutable model; run them side by side.
    type Res = Vec<(String, Result<bool, Error>)>;
    let ioe = |name: &str, r: std::io::Result<bool>| (name.to_string(), r.map_err(|e| Error::Io(format!("{name}: {e}"))));
    let json_part = || -> Res {
        let mut r = Vec::new();
        if want(Format::Json) {
            r.push(ioe("chrome_tracing.json", export::chrome::write(&m, out, &fragments).map(|_| true)));
            stage("chrome_tracing.json written");
        }
        if want(Format::Perfetto) {
            r.push(ioe("trace.perfetto-trace", export::perfetto::write(&m, out, &pf_fragments, &counters).map(|_| true)));
        }
        r
    };
    let csv_part = || -> Res {
        if !want(Format::Csv) {
            return Vec::new();
        }
        let (mut a, b) = rayon::join(
            || vec![ioe("batch.csv", export::batch_csv::write(&m, out))],
            || {
                vec![
                    ioe("request.csv", export::request_csv::write(&m, out)),
                    ioe("kvcache.csv", export::kvcache_csv::write(&m, out)),
                    ioe("forward.csv", export::forward_csv::write(&m, out)),
                    ioe("spec_decode.csv", export::spec_decode_csv::write(&m, out)),
                    ioe("request_status.csv", export::request_status::write(&m, out)),
                ]
            },
        );
        a.extend(b);
        a
    };
    let rest_part = |db: Option<export::db::Db>| -> Res {
        let mut r: Res = Vec::new();
        if want(Format::Csv) || want(Format::Db) {
            match export::summary::write(&m, out) {
                Ok(names) => r.extend(names.into_iter().map(|n| (n.to_string(), Ok(true)))),
                Err(e) => r.push(("summaries".into(), Err(Error::Io(format!("summaries: {e}"))))),
            }
            match export::span_info::write(&m, out) {
                Ok(names) => r.extend(names.into_iter().map(|n| (n, Ok(true)))),
                Err(e) => r.push(("span_info".into(), Err(Error::Io(format!("span_info: {e}"))))),
            }
        }
        if let Some(d) = db {
            stage("profiler.db: writing");
            let db = d.finish(&m, &db_parts).and_then(|_| export::losses::write_db(&out.join("profiler.db"), &losses));
            r.push(("profiler.db".into(), db.map(|_| true).map_err(|e| Error::Io(format!("profiler.db: {e}")))));
        }
        r
    };
    let (j, (c, rest)) = pool.install(|| rayon::join(json_part, || rayon::join(csv_part, || rest_part(db))));
    stage("outputs written");
    std::mem::take(&mut m.spill).remove();
    m.flows.remove();
    for (name, r) in j.into_iter().chain(c).chain(rest) {
        if r? {
            summary.outputs.push(name);
        }
    }
    summary.losses = losses;
    summary.elapsed = t0.elapsed();
    Ok(summary)
}

/// The closing summary as text lines.
pub fn summary_text(s: &Summary, out: &Path) -> String {
    let r = &s.report;
    let mut t = format!(
        "parsed {} records from {} process(es) on {} host(s) in {:.2} s ({:.0} records/s); {} request(s)\n",
        s.records,
        s.processes,
        s.hosts,
        s.elapsed.as_secs_f64(),
        s.records as f64 / s.elapsed.as_secs_f64().max(1e-9),
        s.requests
    );
    t += &format!(
        "losses: {} dropped, {} overwritten, {} oversize by the recorder; {} torn record(s), {} corrupt chunk(s) ({} bytes) skipped; {} process(es) not shut down cleanly\n",
        r.dropped, r.overwritten, r.oversize, r.torn_records, r.corrupt_chunks, r.corrupt_bytes, r.unclean
    );
    if r.device_dropped > 0 {
        t += &format!("device records lost before the ring (MSPTI buffers full, or hand-off queue full): {}\n", r.device_dropped);
    }
    t += &export::losses::summary_lines(&s.losses);
    for u in &s.unreadable {
        t += &format!("skipped unreadable: {u}\n");
    }
    for line in s.device.iter().chain(&s.imports) {
        t += &format!("{line}\n");
    }
    t += &format!("wrote to {}: {}\n", out.display(), s.outputs.join(", "));
    t
}
/// When the current parse started (for [`stage`]).
static START: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// At `--log-level debug`: one line per parse stage with the time since the start, the resident
/// memory and its peak so far (from `/proc/self/status`), to see where a large parse spends them.
pub(crate) fn stage(name: &str) {
    if !crate::log::enabled(crate::log::Level::Debug) {
        return;
    }
    let Some(t0) = START.lock().ok().and_then(|s| *s) else { return };
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |k: &str| s.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.split_whitespace().next()).unwrap_or("?").to_string();
    crate::log!(crate::log::Level::Debug, "parse: {name} at {:.2} s, RSS {} kB, peak {} kB", t0.elapsed().as_secs_f64(), kb("VmRSS:"), kb("VmHWM:"));
}
