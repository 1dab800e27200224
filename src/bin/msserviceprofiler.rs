//! `msserviceprofiler`: the command-line front end (thin; the work is in the library).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc for the command-line tool: the parser makes tens of millions of small allocations
/// (request ids, accumulators); with the options set by [`tune_allocator`] the parse takes about
/// half the CPU time it takes with glibc malloc, at a lower peak RSS (docs/PERFORMANCE.md,
/// round 5). The traced processes' library (the cdylib) keeps the host's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set before anything allocates (an `.init_array` entry runs ahead of the Rust runtime; mimalloc
/// reads an option from the environment the first time it needs it, and the arena options are
/// needed by the first allocation): return freed memory to the OS at once (`purge_delay` 0,
/// from 10 ms) and commit arena memory on demand (`arena_eager_commit` 0). The parser frees large
/// per-part structures while it builds the next ones, and peak RSS is one of its targets. A value
/// the user set wins. Uses libc only: no Rust allocation may happen here.
extern "C" fn tune_allocator() {
    for (name, value) in [(c"MIMALLOC_PURGE_DELAY", c"0"), (c"MIMALLOC_ARENA_EAGER_COMMIT", c"0")] {
        // SAFETY: static NUL-terminated strings; setenv with overwrite 0 keeps a user's value; this
        // runs single-threaded, before main.
        unsafe { libc::setenv(name.as_ptr(), value.as_ptr(), 0) };
    }
}

#[used]
#[link_section = ".init_array"]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;
use ms_service_profiler::reader::{self, json, Process, Report};

#[derive(Parser)]
#[command(name = "msserviceprofiler", version, about = "vLLM service profiler: inspect and parse captures")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Read every process's files under a run directory (or several) and print what was
    /// recovered: one summary line per process and the totals, as JSON. Safe on a live capture.
    Dump {
        /// A run directory, a prof_dir holding several, or any folder above them.
        #[arg(long = "input-path")]
        input_path: PathBuf,
        /// Also print every record as one JSON line.
        #[arg(long)]
        records: bool,
    },
    /// Parse captures into chrome_tracing.json, profiler.db and CSVs (see docs/OUTPUTS.md).
    /// Exit codes: 0 ok, 1 an output could not be written, 2 bad arguments or paths, 3 no
    /// capture found.
    Parse(ParseArgs),
}

#[derive(clap::Args)]
struct ParseArgs {
    /// A run directory, a prof_dir holding several, or any folder above them (scanned
    /// recursively; run directories copied from several hosts side by side are fine).
    #[arg(long = "input-path")]
    input_path: PathBuf,
    /// Where to write the outputs (created with mode 0750; files are 0640).
    #[arg(long = "output-path", default_value = "./output")]
    output_path: PathBuf,
    /// Output formats: any of db, csv, json, perfetto (protobuf trace for large captures; not in
    /// the default set).
    #[arg(long, num_args = 1.., default_values_t = ["db".to_string(), "csv".to_string(), "json".to_string()])]
    format: Vec<String>,
    /// Extra span names to export into span_info/ (forward, BatchSchedule and
    /// batchFrameworkProcessing are always exported). Suppresses nothing.
    #[arg(long, num_args = 0..)]
    span: Option<Vec<String>>,
    /// Log level: debug, info, warning, error, fatal, critical.
    #[arg(long = "log-level", default_value = "info")]
    log_level: String,
    /// Render datetimes at this UTC offset (`UTC`, `+08:00`, …) instead of each capture host's.
    #[arg(long)]
    timezone: Option<String>,
    /// Worker threads (default: all CPUs).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Never show the progress line (it is shown only when stderr is a terminal anyway).
    #[arg(long = "no-progress")]
    no_progress: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Dump { input_path, records } => dump(&input_path, records),
        Cmd::Parse(a) => parse(a),
    }
}

fn dump(root: &std::path::Path, records: bool) -> ExitCode {
    if std::fs::symlink_metadata(root).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
        eprintln!("error: {} is a symlink; refusing to read through it", root.display());
        return ExitCode::from(2);
    }
    if !root.is_dir() {
        eprintln!("error: {} is not a directory", root.display());
        return ExitCode::from(2);
    }
    let sets = reader::discover(root);
    if sets.is_empty() {
        eprintln!("error: no capture files (*.meta) under {}", root.display());
        return ExitCode::from(3);
    }
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut total = Report::default();
    for fs in sets {
        let name = fs.meta.display().to_string();
        let p = match Process::open(fs) {
            Ok(p) => p,
            Err(e) => {
                total.problems.push(e);
                continue;
            }
        };
        let r = p.scan(|it| {
            if records {
                let _ = writeln!(out, "{}", json::record(it.process, &it.record));
            }
        });
        let line = serde_json::json!({
            "process": p.meta.pid, "host": p.meta.hostname, "meta": name,
            "records": r.records, "dropped": r.dropped, "overwritten": r.overwritten, "oversize": r.oversize,
            "device_dropped": r.device_dropped, "torn": r.torn_records, "corrupt_chunks": r.corrupt_chunks, "clean_shutdown": p.meta.clean,
            "hook_errors": r.hook_errors, "expr_errors": r.expr_errors,
            "committed": p.meta.counter(ms_service_profiler::files::meta::Counter::Written),
            "write_error": p.meta.write_error.map(|e| std::io::Error::from_raw_os_error(e as i32).to_string()),
            "info": p.meta.meta.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        });
        let _ = writeln!(out, "{line}");
        total.merge(&r);
    }
    let summary = serde_json::json!({"total": {
        "records": total.records, "dropped": total.dropped, "overwritten": total.overwritten, "oversize": total.oversize,
        "device_dropped": total.device_dropped, "torn": total.torn_records, "corrupt_chunks": total.corrupt_chunks, "unclean_processes": total.unclean,
        "problems": total.problems,
    }});
    let _ = writeln!(out, "{summary}");
    ExitCode::SUCCESS
}

fn parse(a: ParseArgs) -> ExitCode {
    use ms_service_profiler::parse::{self, Format, Options};
    let level = a.log_level.to_ascii_lowercase();
    if !["debug", "info", "warning", "error", "fatal", "critical"].contains(&level.as_str()) {
        eprintln!("error: --log-level must be one of debug, info, warning, error, fatal, critical");
        return ExitCode::from(2);
    }
    let mut formats = Vec::new();
    for f in a.format.iter().flat_map(|f| f.split(',')).filter(|f| !f.is_empty()) {
        match Format::parse(f) {
            Some(x) if !formats.contains(&x) => formats.push(x),
            Some(_) => {}
            None => {
                eprintln!("error: unknown --format {f:?} (expected db, csv, json or perfetto)");
                return ExitCode::from(2);
            }
        }
    }
    let timezone = match a.timezone.as_deref().map(|t| (t, parse::time::parse_offset(t))) {
        None => None,
        Some((_, Some(o))) => Some(o),
        Some((t, None)) => {
            eprintln!("error: --timezone {t:?}: expected UTC or an offset such as +08:00");
            return ExitCode::from(2);
        }
    };
    let quiet = matches!(level.as_str(), "error" | "fatal" | "critical");
    if level == "debug" {
        ms_service_profiler::log::set_level(ms_service_profiler::log::Level::Debug);
    }
    let opts = Options {
        input: a.input_path,
        output: a.output_path,
        formats,
        spans: a.span.unwrap_or_default(),
        timezone,
        jobs: a.jobs,
        progress: !a.no_progress && !quiet && unsafe { libc::isatty(2) } == 1,
    };
    match parse::run(&opts) {
        Ok(s) => {
            if !quiet {
                print!("{}", parse::summary_text(&s, &opts.output));
            }
            if level != "critical" && level != "fatal" {
                let shown = if level == "debug" { usize::MAX } else { 20 };
                for p in s.report.problems.iter().take(shown) {
                    eprintln!("warning: {p}");
                }
                if s.report.problems.len() > shown {
                    eprintln!("warning: … and {} more problem(s) (--log-level debug shows all)", s.report.problems.len() - shown);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
