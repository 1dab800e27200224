//! The per-process trace writer: slices, instants and counters of one process, streamed into a
//! chrome-trace fragment file and/or batches of profiler.db timeline rows. Fragments are joined
//! into `chrome_tracing.json` at the end (see [`super::chrome`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde_json::Value as J;

use super::db_part::{PartWriter, Row};
use crate::parse::model::event::Event;
use crate::parse::model::rid::{RidEntry, RidMap, Rids};
use crate::parse::time;

/// A trace thread (track) of one process.
#[derive(Clone, Debug)]
pub struct ThreadInfo {
    /// The integer tid used in the trace.
    pub tid: u32,
    /// `<domain>(<os tid>)`, or the domain alone for request/KV domains.
    pub name: String,
    /// The domain.
    pub domain: String,
}

/// One `slice` row of profiler.db (ns).
#[derive(Clone, Debug)]
pub struct SliceRow {
    /// Start, epoch ns.
    pub ts: i64,
    /// Duration, ns.
    pub dur: i64,
    /// Name.
    pub name: String,
    /// Trace pid.
    pub pid: u64,
    /// Thread name (the `thread.tid` text).
    pub tid: String,
    /// Domain.
    pub cat: String,
    /// Arguments, JSON.
    pub args: String,
}

/// One `counter` row of profiler.db (ns).
#[derive(Clone, Debug)]
pub struct CounterRow {
    /// Counter name.
    pub name: String,
    /// Trace pid.
    pub pid: u64,
    /// Time, epoch ns.
    pub ts: i64,
    /// Domain.
    pub cat: String,
    /// Arguments, JSON.
    pub args: String,
}

/// Timeline rows sent to the profiler.db writer through [`super::db::Db::sender`] (inserted as
/// they arrive; the processes' own rows go through [`super::db_part`] spill files instead).
pub enum DbRows {
    /// Slices and instants.
    Slices(Vec<SliceRow>),
    /// Counter samples.
    Counters(Vec<CounterRow>),
}

/// What a finished [`TraceOut`] leaves behind.
#[derive(Default)]
pub struct Finished {
    /// The JSON fragment file.
    pub fragment: Option<PathBuf>,
    /// The trace threads.
    pub threads: Vec<ThreadInfo>,
    /// The protobuf fragment file.
    pub perfetto: Option<PathBuf>,
    /// Counter names drawn (Perfetto needs a track per counter).
    pub counters: Vec<String>,
    /// The profiler.db spill file.
    pub db: Option<PathBuf>,
}

/// Domains whose records are not drawn as slices (counters or nothing).
pub fn is_sliced(domain: &str) -> bool {
    !matches!(domain, "npu" | "Schedule.KVCache" | "KVCache" | "PullKVCache" | "Queue" | "Meta") && !domain.starts_with("expert_hot")
}

/// Domains drawn on one track per process (not per OS thread).
fn per_process_track(domain: &str) -> bool {
    matches!(domain, "Request" | "RequestState" | "Schedule.KVCache" | "KVCache")
}

/// The trace tid of (domain, OS tid): deterministic, so the parts of one process read in
/// parallel agree: `(os_tid << 8) | domain code` (known domains 1–11, others hashed to 16–255).
pub fn trace_tid(domain: &str, os_tid: u32) -> u32 {
    const KNOWN: [&str; 11] =
        ["Execute", "Schedule", "Communication", "KVCache", "Schedule.KVCache", "Engine", "Api", "Kernel", "Request", "RequestState", "Multimodal"];
    let code = match KNOWN.iter().position(|d| *d == domain) {
        Some(i) => i as u32 + 1,
        None => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = rustc_hash::FxBuildHasher.build_hasher();
            h.write(domain.as_bytes());
            16 + (h.finish() % 240) as u32
        }
    };
    (os_tid & 0x00ff_ffff) << 8 | code
}

/// Writer for one process (or one part of it).
pub struct TraceOut {
    pid: u64,
    offset_s: i32,
    json: Option<(BufWriter<File>, PathBuf, bool)>,
    db: Option<PartWriter>,
    pf: Option<(BufWriter<File>, PathBuf)>,
    counters: Vec<String>,
    threads: rustc_hash::FxHashMap<u32, usize>,
    list: Vec<ThreadInfo>,
    buf: Vec<u8>,
    /// The last `res_list` JSON with the list it was written from (held, so the pointer
    /// comparison is sound): a `modelExec` repeats its schedule record's shared list.
    res: Option<(std::sync::Arc<Vec<RidEntry>>, bool, Vec<u8>)>,
}

impl TraceOut {
    /// A writer for trace pid `pid`, writing a fragment to `json`, profiler.db rows to the spill
    /// file `db` (see [`super::db_part`]) and/or a protobuf fragment to `perfetto`.
    pub fn new(pid: u64, offset_s: i32, json: Option<PathBuf>, db: Option<PathBuf>, perfetto: Option<PathBuf>) -> std::io::Result<TraceOut> {
        let pf = match perfetto {
            Some(p) => Some((BufWriter::with_capacity(1 << 20, crate::parse::output::create_file(&p)?), p)),
            None => None,
        };
        let json = match json {
            Some(p) => Some((BufWriter::with_capacity(1 << 20, crate::parse::output::create_file(&p)?), p, true)),
            None => None,
        };
        Ok(TraceOut {
            pid,
            offset_s,
            json,
            db: match db {
                Some(p) => Some(PartWriter::create(&p)?),
                None => None,
            },
            pf,
            counters: Vec::new(),
            threads: Default::default(),
            list: Vec::new(),
            buf: Vec::with_capacity(1024),
            res: None,
        })
    }

    /// The integer tid of (domain, OS tid), allocated on first use.
    pub fn tid(&mut self, domain: &str, os_tid: u32) -> u32 {
        let os = if per_process_track(domain) { 0 } else { os_tid };
        let t = trace_tid(domain, os);
        if !self.threads.contains_key(&t) {
            self.threads.insert(t, self.list.len());
            let name = if os == 0 && per_process_track(domain) {
                domain.to_string()
            } else {
                crate::parse::model::device::track_name(domain, os).unwrap_or_else(|| format!("{domain}({os})"))
            };
            self.list.push(ThreadInfo { tid: t, name, domain: domain.to_string() });
        }
        t
    }

    fn emit(&mut self) -> std::io::Result<()> {
        if let Some((w, _, first)) = &mut self.json {
            if !*first {
                w.write_all(b",\n")?;
            }
            *first = false;
            w.write_all(&self.buf)?;
        }
        Ok(())
    }

    /// A slice (`X`) or instant (`I`) for `ev`; `batch` adds `batch_size`, `batch_type` and
    /// `res_list`. Returns the integer tid.
    pub fn slice(&mut self, ev: &Event<'_>, batch: Option<(f64, &str)>) -> std::io::Result<u32> {
        let tid = self.tid(ev.domain, ev.tid);
        let mut args = Vec::with_capacity(256);
        args.push(b'{');
        let mut n = 0;
        let mut put = |args: &mut Vec<u8>, k: &str, v: &J| {
            if n > 0 {
                args.push(b',');
            }
            n += 1;
            let _ = serde_json::to_writer(&mut *args, k);
            args.push(b':');
            let _ = serde_json::to_writer(&mut *args, v);
        };
        for (k, v) in &ev.attrs.items {
            if !matches!(k.as_ref(), "domain" | "name" | "type" | "rid" | "batch_size" | "batch_type") {
                put(&mut args, k, v);
            }
        }
        // Datetimes and the tid need no JSON escaping: written in place.
        for (k, t) in [(&b"\"start_datetime\":\""[..], ev.start), (&b"\"end_datetime\":\""[..], ev.end)] {
            if n > 0 {
                args.push(b',');
            }
            n += 1;
            args.extend_from_slice(k);
            time::datetime_into(&mut args, t, self.offset_s);
            args.push(b'"');
        }
        args.extend_from_slice(b",\"tid\":");
        args.extend_from_slice(itoa::Buffer::new().format(ev.tid).as_bytes());
        let put = |args: &mut Vec<u8>, k: &str, v: &J| {
            args.push(b',');
            let _ = serde_json::to_writer(&mut *args, k);
            args.push(b':');
            let _ = serde_json::to_writer(&mut *args, v);
        };
        if let Some((size, ty)) = batch {
            put(&mut args, "batch_size", &J::from(size));
            if !ty.is_empty() {
                put(&mut args, "batch_type", &J::String(ty.to_string()));
            }
            if !ev.rids.is_empty() {
                // start_datetime etc. precede, so a separator is always needed.
                args.extend_from_slice(b",\"res_list\":");
                let e = &ev.rids.entries;
                match &mut self.res {
                    Some((l, d, text)) if std::sync::Arc::ptr_eq(l, e) && *d == ev.rids.dicts => args.extend_from_slice(text),
                    slot => {
                        let mut text = slot.take().map(|s| s.2).unwrap_or_default();
                        text.clear();
                        Rids::write_json_bytes(&mut text, e, ev.rids.dicts, &RidMap::default(), false);
                        args.extend_from_slice(&text);
                        *slot = Some((e.clone(), ev.rids.dicts, text));
                    }
                }
            }
        } else {
            for k in ["batch_size", "batch_type"] {
                if let Some(v) = ev.attrs.get(k) {
                    put(&mut args, k, v);
                }
            }
        }
        if !ev.rids.is_empty() {
            args.extend_from_slice(b",\"rid\":");
            // The ids joined by `,` as one JSON string; written in place when nothing needs escaping.
            let clean = |r: &str| r.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
            if ev.rids.entries.iter().all(|e| clean(&e.rid)) {
                args.push(b'"');
                for (i, e) in ev.rids.entries.iter().enumerate() {
                    if i > 0 {
                        args.push(b',');
                    }
                    args.extend_from_slice(e.rid.as_bytes());
                }
                args.push(b'"');
            } else {
                let _ = serde_json::to_writer(&mut args, &ev.rids.joined());
            }
        }
        args.push(b'}');
        let dur = ev.dur();
        if self.json.is_some() {
            self.buf.clear();
            self.buf.extend_from_slice(b"{\"name\":");
            let _ = serde_json::to_writer(&mut self.buf, ev.name);
            if dur > 0 {
                self.buf.extend_from_slice(b",\"ph\":\"X\",\"ts\":");
                time::us_text_into(&mut self.buf, ev.start);
                self.buf.extend_from_slice(b",\"dur\":");
                time::us_text_into(&mut self.buf, dur);
            } else {
                self.buf.extend_from_slice(b",\"ph\":\"I\",\"s\":\"t\",\"ts\":");
                time::us_text_into(&mut self.buf, ev.start);
            }
            self.buf.extend_from_slice(b",\"pid\":");
            self.buf.extend_from_slice(itoa::Buffer::new().format(self.pid).as_bytes());
            self.buf.extend_from_slice(b",\"tid\":");
            self.buf.extend_from_slice(itoa::Buffer::new().format(tid).as_bytes());
            self.buf.extend_from_slice(b",\"cat\":");
            let _ = serde_json::to_writer(&mut self.buf, ev.domain);
            self.buf.extend_from_slice(b",\"args\":");
            self.buf.extend_from_slice(&args);
            self.buf.push(b'}');
            self.emit()?;
        }
        if let Some((w, _)) = &mut self.pf {
            let track = super::perfetto::thread_uuid(self.pid, tid);
            let rid = ev.rids.joined();
            let ann: Vec<(&str, &str)> = if rid.is_empty() { Vec::new() } else { vec![("rid", rid.as_str())] };
            let flows: Vec<u64> = ev.rids.entries.iter().map(|e| super::perfetto::flow_id(&e.rid)).collect();
            if dur > 0 {
                super::perfetto::track_event(w, ev.start, super::perfetto::ty::BEGIN, track, Some(ev.name), Some(ev.domain), &ann, &flows, None)?;
                super::perfetto::track_event(w, ev.end, super::perfetto::ty::END, track, None, None, &[], &[], None)?;
            } else {
                super::perfetto::track_event(w, ev.start, super::perfetto::ty::INSTANT, track, Some(ev.name), Some(ev.domain), &ann, &flows, None)?;
            }
        }
        if let Some(d) = &mut self.db {
            let args = std::str::from_utf8(&args).unwrap_or_default();
            let tname = &self.list[self.threads[&tid]].name;
            d.put(&Row { slice: true, ts: ev.start, dur, pid: self.pid, name: ev.name, tid: tname, cat: ev.domain, args })?;
        }
        Ok(tid)
    }

    /// A counter sample (`C`): `name` on this process, values by series.
    pub fn counter(&mut self, name: &str, cat: &str, ts: i64, values: &[(&str, f64)]) -> std::io::Result<()> {
        // `{"<series>":<value>,…}`; through a map only when a series repeats (the map keeps the
        // first position and the last value).
        let distinct = values.iter().enumerate().all(|(i, (k, _))| values[..i].iter().all(|(k2, _)| k2 != k));
        let args = if distinct {
            let mut a = Vec::with_capacity(64);
            a.push(b'{');
            for (i, (k, v)) in values.iter().enumerate() {
                if i > 0 {
                    a.push(b',');
                }
                serde_json::to_writer(&mut a, k)?;
                a.push(b':');
                serde_json::to_writer(&mut a, &J::from(*v))?;
            }
            a.push(b'}');
            String::from_utf8(a).expect("JSON text is UTF-8")
        } else {
            let mut args = serde_json::Map::new();
            for (k, v) in values {
                args.insert((*k).to_string(), J::from(*v));
            }
            J::Object(args).to_string()
        };
        if self.json.is_some() {
            self.buf.clear();
            self.buf.extend_from_slice(b"{\"name\":");
            let _ = serde_json::to_writer(&mut self.buf, name);
            self.buf.extend_from_slice(b",\"ph\":\"C\",\"ts\":");
            time::us_text_into(&mut self.buf, ts);
            self.buf.extend_from_slice(b",\"pid\":");
            self.buf.extend_from_slice(itoa::Buffer::new().format(self.pid).as_bytes());
            self.buf.extend_from_slice(b",\"args\":");
            self.buf.extend_from_slice(args.as_bytes());
            self.buf.push(b'}');
            self.emit()?;
        }
        if let Some((w, _)) = &mut self.pf {
            if !self.counters.iter().any(|c| c == name) {
                self.counters.push(name.to_string());
            }
            let v = values.first().map(|x| x.1).unwrap_or(0.0);
            super::perfetto::track_event(w, ts, super::perfetto::ty::COUNTER, super::perfetto::counter_uuid(self.pid, name), None, None, &[], &[], Some(v))?;
        }
        if let Some(d) = &mut self.db {
            d.put(&Row { slice: false, ts, dur: 0, pid: self.pid, name, tid: "", cat, args: &args })?;
        }
        Ok(())
    }

    /// Flush; returns the fragment paths and the thread table.
    pub fn finish(mut self) -> std::io::Result<Finished> {
        let pf = match self.pf.take() {
            Some((mut w, p)) => {
                w.flush()?;
                Some(p)
            }
            None => None,
        };
        let path = match self.json.take() {
            Some((mut w, p, _)) => {
                w.flush()?;
                Some(p)
            }
            None => None,
        };
        let db = match self.db.take() {
            Some(d) => Some(d.finish()?),
            None => None,
        };
        Ok(Finished { fragment: path, threads: self.list, perfetto: pf, counters: self.counters, db })
    }
}
