//! Timelines captured by other profilers, merged onto the service timeline:
//! the framework profiler's chrome traces (`acl_task_time: 3`, [`torch`]) and CANN's exported
//! msprof timelines (`acl_task_time: 1`, [`msprof`]). Each becomes one more fragment of
//! `chrome_tracing.json` (see [`super::export::chrome`]) and `slice` rows of profiler.db.

pub mod msprof;
pub mod torch;

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;

use serde_json::Value as J;

use super::build::Model;
use super::export::trace::{DbRows, SliceRow};
use crate::reader::Process;

/// Largest timeline file read (as the reference caps `.json` inputs).
pub const MAX_JSON: u64 = 1 << 30;

/// What the imports produced.
#[derive(Default)]
pub struct Imported {
    /// Fragment files to join into `chrome_tracing.json`.
    pub fragments: Vec<PathBuf>,
    /// One line per imported source or problem (for the closing summary).
    pub notes: Vec<String>,
}

/// Files found under the input.
#[derive(Default, Debug)]
pub struct Found {
    /// `torch_prof/<host>-<pid>/clock_<n>.json` files.
    pub torch: Vec<PathBuf>,
    /// `msprof_*.json` files.
    pub msprof: Vec<PathBuf>,
    /// `PROF_*` directories.
    pub prof_dirs: Vec<PathBuf>,
}

/// Find the importable files under `root` (symlinks are not followed).
pub fn find(root: &Path) -> Found {
    let mut f = Found::default();
    walk(root, &mut f, 0);
    f.torch.sort();
    f.msprof.sort();
    f.prof_dirs.sort();
    f
}

fn walk(dir: &Path, f: &mut Found, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if ft.is_dir() {
            if name.starts_with("PROF_") {
                f.prof_dirs.push(p.clone());
            }
            walk(&p, f, depth + 1);
        } else if ft.is_file() && name.ends_with(".json") {
            let in_torch = p.parent().and_then(|d| d.parent()).and_then(|d| d.file_name()).is_some_and(|n| n == "torch_prof");
            if in_torch && name.starts_with("clock_") {
                f.torch.push(p);
            } else if name.starts_with("msprof") && !name.starts_with("msprof_tx") {
                f.msprof.push(p);
            }
        }
    }
}

/// Read a chrome-trace file: a bare array of events or an object with `traceEvents`.
pub fn read_events(path: &Path) -> Result<(Vec<J>, J), String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_JSON {
        return Err(format!("{len} bytes is over the {MAX_JSON}-byte limit"));
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let v: J = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| format!("not JSON: {e}"))?;
    match v {
        J::Array(a) => Ok((a, J::Null)),
        J::Object(mut o) => match o.remove("traceEvents") {
            Some(J::Array(a)) => Ok((a, J::Object(o))),
            _ => Err("no traceEvents array".into()),
        },
        _ => Err("not a chrome trace".into()),
    }
}

/// Writes imported events: a fragment file and/or profiler.db slice rows.
pub struct Sink {
    json: Option<(BufWriter<std::fs::File>, PathBuf, bool)>,
    db: Option<(SyncSender<DbRows>, Vec<SliceRow>)>,
    names: HashMap<(u64, String), String>,
}

impl Sink {
    /// A sink writing `frag` (when JSON output is on) and rows to `db`.
    pub fn new(frag: Option<PathBuf>, db: Option<SyncSender<DbRows>>) -> std::io::Result<Sink> {
        let json = match frag {
            Some(p) => Some((BufWriter::new(crate::parse::output::create_file(&p)?), p, true)),
            None => None,
        };
        Ok(Sink { json, db: db.map(|d| (d, Vec::new())), names: HashMap::new() })
    }

    /// Name the track (pid, tid) for profiler.db rows.
    pub fn name_track(&mut self, pid: u64, tid: &J, name: &str) {
        self.names.insert((pid, tid_key(tid)), name.to_string());
    }

    /// Write one event (already moved onto the service timeline). `ts_ns`, when given, is
    /// written as `ts` with ns precision (an f64 of epoch µs has only ¼ µs); else `ts` is kept.
    pub fn event(&mut self, e: &J, ts_ns: Option<i64>) -> std::io::Result<()> {
        if let Some((w, _, first)) = &mut self.json {
            if !*first {
                w.write_all(b",\n")?;
            }
            *first = false;
            match (ts_ns, e.as_object()) {
                (Some(ts), Some(o)) => {
                    let mut o = o.clone();
                    o.remove("ts");
                    write!(w, "{{\"ts\":{}", crate::parse::time::us_text(ts))?;
                    for (k, v) in &o {
                        w.write_all(b",")?;
                        serde_json::to_writer(&mut *w, k)?;
                        w.write_all(b":")?;
                        serde_json::to_writer(&mut *w, v)?;
                    }
                    w.write_all(b"}")?;
                }
                _ => serde_json::to_writer(&mut *w, e)?,
            }
        }
        if let Some((tx, rows)) = &mut self.db {
            let ph = e["ph"].as_str().unwrap_or("");
            if ph == "X" || ph.eq_ignore_ascii_case("i") {
                let ts = ts_ns.or_else(|| us_to_ns(&e["ts"])).unwrap_or(0);
                let dur = us_to_ns(&e["dur"]).unwrap_or(0);
                let pid = e["pid"].as_u64().unwrap_or(0);
                let key = tid_key(&e["tid"]);
                let tid = self.names.get(&(pid, key.clone())).cloned().unwrap_or(key);
                rows.push(SliceRow {
                    ts,
                    dur,
                    name: e["name"].as_str().unwrap_or("").to_string(),
                    pid,
                    tid,
                    cat: e["cat"].as_str().unwrap_or("").to_string(),
                    args: e.get("args").map(|a| a.to_string()).unwrap_or_else(|| "{}".into()),
                });
                if rows.len() >= 4096 {
                    let _ = tx.send(DbRows::Slices(std::mem::take(rows)));
                }
            }
        }
        Ok(())
    }

    /// Flush; returns the fragment path.
    pub fn finish(mut self) -> std::io::Result<Option<PathBuf>> {
        if let Some((tx, rows)) = self.db.take() {
            if !rows.is_empty() {
                let _ = tx.send(DbRows::Slices(rows));
            }
        }
        match self.json.take() {
            Some((mut w, p, _)) => {
                w.flush()?;
                Ok(Some(p))
            }
            None => Ok(None),
        }
    }
}

/// A µs time (a number, or a decimal string as msprof writes them, read exactly) in ns.
pub fn us_to_ns(v: &J) -> Option<i64> {
    match v {
        J::String(s) => {
            let s = s.trim();
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            let mut f: String = frac.chars().take(3).collect();
            while f.len() < 3 {
                f.push('0');
            }
            let neg = int.starts_with('-');
            let i: i64 = int.parse().ok()?;
            let fr: i64 = f.parse().ok()?;
            Some(i * 1000 + if neg { -fr } else { fr })
        }
        other => other.as_f64().map(|x| (x * 1e3).round() as i64),
    }
}

/// A tid as text (ints and strings both occur).
pub fn tid_key(t: &J) -> String {
    match t {
        J::String(s) => s.clone(),
        J::Null => String::new(),
        other => other.to_string(),
    }
}

/// Import everything found under `input` into the outputs in `out` (fragment files when `json`,
/// slice rows on `db`). Problems become notes, never errors.
pub fn run(input: &Path, out: &Path, procs: &[Process], m: &Model, json: bool, db: Option<SyncSender<DbRows>>) -> Imported {
    let found = find(input);
    let mut imp = Imported::default();
    let mut n = 0usize;
    let frag = |n: &mut usize| {
        *n += 1;
        json.then(|| out.join(format!(".import.{n}.part")))
    };
    for clock in &found.torch {
        let what = clock.display().to_string();
        let r = Sink::new(frag(&mut n), db.clone()).map_err(|e| e.to_string()).and_then(|mut s| {
            let note = torch::import(clock, procs, m, n, &mut s)?;
            Ok((s.finish().map_err(|e| e.to_string())?, note))
        });
        match r {
            Ok((f, note)) => {
                imp.fragments.extend(f);
                imp.notes.push(note);
            }
            Err(e) => imp.notes.push(format!("torch profiler trace {what}: {e}; skipped")),
        }
    }
    for file in &found.msprof {
        let what = file.display().to_string();
        let r = Sink::new(frag(&mut n), db.clone()).map_err(|e| e.to_string()).and_then(|mut s| {
            let note = msprof::import(file, m, n, &mut s)?;
            Ok((s.finish().map_err(|e| e.to_string())?, note))
        });
        match r {
            Ok((f, note)) => {
                imp.fragments.extend(f);
                imp.notes.push(note);
            }
            Err(e) => imp.notes.push(format!("msprof timeline {what}: {e}; skipped")),
        }
    }
    for d in &found.prof_dirs {
        if !found.msprof.iter().any(|f| f.starts_with(d)) {
            imp.notes.push(format!(
                "{}: no exported msprof timeline (mindstudio_profiler_output/msprof_*.json); run `msprof --export=on --output={}` and parse again",
                d.display(),
                d.display()
            ));
        }
    }
    imp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_exactly() {
        assert_eq!(us_to_ns(&J::String("1795850886428698.123".into())), Some(1_795_850_886_428_698_123));
        assert_eq!(us_to_ns(&J::String("12.5".into())), Some(12_500));
        assert_eq!(us_to_ns(&J::String("7".into())), Some(7_000));
        assert_eq!(us_to_ns(&J::from(2.5)), Some(2_500));
        assert_eq!(us_to_ns(&J::Null), None);
    }
}
