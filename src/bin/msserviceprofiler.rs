//! `msserviceprofiler`: the command-line front end (thin; the work is in the library).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Dump { input_path, records } => dump(&input_path, records),
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
            "torn": r.torn_records, "corrupt_chunks": r.corrupt_chunks, "clean_shutdown": p.meta.clean,
            "hook_errors": r.hook_errors, "expr_errors": r.expr_errors,
            "info": p.meta.meta.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        });
        let _ = writeln!(out, "{line}");
        total.merge(&r);
    }
    let summary = serde_json::json!({"total": {
        "records": total.records, "dropped": total.dropped, "overwritten": total.overwritten, "oversize": total.oversize,
        "torn": total.torn_records, "corrupt_chunks": total.corrupt_chunks, "unclean_processes": total.unclean,
        "problems": total.problems,
    }});
    let _ = writeln!(out, "{summary}");
    ExitCode::SUCCESS
}
