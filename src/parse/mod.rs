//! `msserviceprofiler parse`: reads every process's capture files under one or more run
//! directories (in parallel, streaming), builds the model (requests, batches, KV cache, forward
//! passes; engine ids mapped back to API ids) and writes the outputs of docs/OUTPUTS.md.

pub mod build;
pub mod collect;
pub mod export;
pub mod model;
pub mod output;
pub mod time;

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
}

impl Format {
    /// From a `--format` word.
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "db" => Some(Format::Db),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
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
    /// Files written (relative to the output directory).
    pub outputs: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
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
    validate(opts)?;
    let sets = reader::discover(&opts.input);
    if sets.is_empty() {
        return Err(Error::NoInput(format!("no capture files (ms_service_*.meta) under {}", opts.input.display())));
    }
    let mut summary = Summary::default();
    let mut procs: Vec<Process> = Vec::new();
    for fs in sets {
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
    let mut spans: HashSet<String> = export::span_info::DEFAULT_SPANS.iter().map(|s| s.to_string()).collect();
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
    let results: Vec<ProcResult> = pool.install(|| {
        procs
            .par_iter()
            .zip(infos.par_iter())
            .map(|(p, info)| {
                let frag = want(Format::Json).then(|| opts.output.join(format!(".chrome_tracing.{}.part", info.index)));
                let trace = if frag.is_some() || db.is_some() {
                    match TraceOut::new(info.trace_pid, info.offset_s, frag, db.as_ref().map(|d| d.sender())) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            let mut r = read_process(p, info, &spans, None, &count);
                            r.io_error = Some(e.to_string());
                            return r;
                        }
                    }
                } else {
                    None
                };
                read_process(p, info, &spans, trace, &count)
            })
            .collect()
    });
    done.store(true, Ordering::Relaxed);
    if let Some(b) = bar {
        let _ = b.join();
    }
    let mut partial = Partial::default();
    let mut roles = Vec::new();
    let mut threads = Vec::new();
    let mut fragments = Vec::new();
    for (r, info) in results.into_iter().zip(infos.iter()) {
        if let Some(e) = r.io_error {
            return Err(Error::Io(format!("writing trace output: {e}")));
        }
        summary.report.merge(&r.report);
        roles.push(info.meta_role.unwrap_or_else(|| Role::infer(r.domains)));
        threads.push(r.threads);
        fragments.extend(r.fragment);
        partial.merge(r.partial);
    }
    summary.records = summary.report.records;
    summary.processes = infos.len();
    summary.hosts = infos.iter().map(|p| p.hostname.as_str()).collect::<HashSet<_>>().len();
    let m = Model::build(infos, roles, threads, partial);
    summary.requests = m.requests.len();
    let out = &opts.output;
    if want(Format::Json) {
        export::chrome::write(&m, out, &fragments).map_err(io("chrome_tracing.json"))?;
        summary.outputs.push("chrome_tracing.json".into());
    }
    if want(Format::Csv) {
        let mut w = |name: &str, r: std::io::Result<bool>| -> Result<(), Error> {
            if r.map_err(|e| Error::Io(format!("{name}: {e}")))? {
                summary.outputs.push(name.to_string());
            }
            Ok(())
        };
        w("request.csv", export::request_csv::write(&m, out))?;
        w("batch.csv", export::batch_csv::write(&m, out))?;
        w("kvcache.csv", export::kvcache_csv::write(&m, out))?;
        w("forward.csv", export::forward_csv::write(&m, out))?;
        w("spec_decode.csv", export::spec_decode_csv::write(&m, out))?;
        w("request_status.csv", export::request_status::write(&m, out))?;
    }
    if want(Format::Csv) || want(Format::Db) {
        for n in export::summary::write(&m, out).map_err(io("summaries"))? {
            summary.outputs.push(n.into());
        }
        summary.outputs.extend(export::span_info::write(&m, out).map_err(io("span_info"))?);
    }
    if let Some(d) = db {
        d.finish(&m).map_err(|e| Error::Io(format!("profiler.db: {e}")))?;
        summary.outputs.push("profiler.db".into());
    }
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
    for u in &s.unreadable {
        t += &format!("skipped unreadable: {u}\n");
    }
    t += &format!("wrote to {}: {}\n", out.display(), s.outputs.join(", "));
    t
}
