//! Reading one process: every record is normalised once, drawn into the trace writer and folded
//! into that process's [`Partial`].

use rustc_hash::FxHashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::parse::export::trace::{is_sliced, Finished, ThreadInfo, TraceOut};
use crate::parse::model::attrs::AttrCache;
use crate::parse::model::batch::BatchRow;
use crate::parse::model::batch_name::BatchName;
use crate::parse::model::event::Event;
use crate::parse::model::flows::FlowWriter;
use crate::parse::model::forward::FwdRow;
use crate::parse::model::kv::{is_kv, KvRow};
use crate::parse::model::names::Names;
use crate::parse::model::partial::{Partial, QueueName, QueueSample, SpanRow};
use crate::parse::model::process::ProcInfo;
use crate::parse::model::request::{IterEnd, ReqAcc};
use crate::parse::model::spill::{SpillRef, SpillWriter};
use crate::reader::{Item, Process, Report};
use crate::record::Kind;

/// What reading one process produced.
pub struct ProcResult {
    /// Model data.
    pub partial: Partial,
    /// Reader report (drops, corruption, problems).
    pub report: Report,
    /// Domains seen: bit 0 Engine, 1 Schedule, 2 Execute.
    pub domains: u8,
    /// The trace fragment file, if JSON output is on.
    pub fragment: Option<std::path::PathBuf>,
    /// Trace threads of the process.
    pub threads: Vec<ThreadInfo>,
    /// The protobuf trace fragment, if Perfetto output is on.
    pub perfetto: Option<std::path::PathBuf>,
    /// Counter names drawn (Perfetto needs a track per counter).
    pub counters: Vec<String>,
    /// The batch-list spill file of this part (see `model::spill`).
    pub spill: Option<std::path::PathBuf>,
    /// The profiler.db spill file of this part (see `export::db_part`).
    pub db_part: Option<std::path::PathBuf>,
    /// Errors writing outputs.
    pub io_error: Option<String>,
}

/// Folds events into a partial.
pub struct Collector<'a> {
    info: &'a ProcInfo,
    part: Partial,
    trace: Option<TraceOut>,
    domains: u8,
    io_error: Option<String>,
    /// The flow-point spill (for chrome_tracing.json and profiler.db), when they are written.
    flows: Option<FlowWriter>,
    /// Keep the table rows (batch, KV, forward, queue samples, iteration ends, and the spans of
    /// `span_info/` named in the set): only the CSVs and profiler.db read them; the traces are
    /// written while reading.
    rows: Option<&'a FxHashSet<String>>,
    last_entries: Option<std::sync::Arc<Vec<crate::parse::model::rid::RidEntry>>>,
    cache: AttrCache,
    spill: Option<SpillWriter>,
    last_ref: Option<SpillRef>,
    empty: std::sync::Arc<Vec<crate::parse::model::rid::RidEntry>>,
    names: Names,
}

impl<'a> Collector<'a> {
    /// A collector for process `info`, keeping the table rows when `rows` is given (with the
    /// `span_info` spans it names).
    pub fn new(info: &'a ProcInfo, rows: Option<&'a FxHashSet<String>>, trace: Option<TraceOut>) -> Collector<'a> {
        Collector {
            info,
            part: Partial::default(),
            trace,
            domains: 0,
            io_error: None,
            flows: None,
            rows,
            last_entries: None,
            cache: AttrCache::default(),
            spill: None,
            last_ref: None,
            empty: Default::default(),
            names: Names::default(),
        }
    }

    fn req(&mut self, rid: &str, ts: i64) -> &mut ReqAcc {
        // One lookup; the key is allocated only when the id is new.
        let r = self.part.requests.entry_ref(rid).or_default();
        r.seen(ts);
        r
    }

    /// Fold one record.
    pub fn item(&mut self, it: &Item<'_>) {
        let ev = Event::from_item_cached(it, Some(&mut self.cache));
        self.event(ev);
    }

    /// Fold one normalised event.
    pub fn event(&mut self, mut owned: Event<'_>) {
        // Device data (kernels, API calls, usage samples) stays out of the host model.
        match crate::parse::model::device::fold(&mut self.part.device, self.trace.as_mut(), &mut owned, self.info.index) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                self.io_error.get_or_insert(e.to_string());
                return;
            }
        }
        let ev = &owned;
        let proc = self.info.index;
        match ev.domain {
            "Engine" | "Request" => self.domains |= 1,
            "Schedule" => self.domains |= 2,
            "Execute" => self.domains |= 4,
            _ => {}
        }
        if ev.kind == Kind::Link {
            if ev.rids.entries.len() >= 2 {
                self.part.links.push((ev.rids.entries[0].rid.clone(), ev.rids.entries[1].rid.clone()));
            }
            return;
        }
        if ev.kind == Kind::Metric {
            if let (Some(v), Some(t)) = (ev.value, self.trace.as_mut()) {
                if let Err(e) = t.counter(ev.name, ev.domain, ev.start, &[(ev.name, v)]) {
                    self.io_error.get_or_insert(e.to_string());
                }
            }
            return;
        }
        let batch_name = if ev.kind == Kind::Span { BatchName::of(ev.name) } else { None };
        let batch = batch_name.is_some();
        let batch_type = if batch { BatchRow::type_of(ev) } else { std::borrow::Cow::Borrowed("") };
        // Trace.
        if let Some(t) = self.trace.as_mut() {
            let mut res = Ok(());
            if is_sliced(ev.domain) {
                match t.slice(ev, batch.then(|| (ev.rids.entries.len() as f64, batch_type.as_ref()))) {
                    Ok(tid) => {
                        if let Some(fw) = self.flows.as_mut() {
                            for e in ev.rids.entries.iter() {
                                let a = self.part.requests.entry_ref(e.rid.as_str()).or_default();
                                res = res.and(fw.point(&mut a.flow, ev.start, tid));
                            }
                        }
                    }
                    Err(e) => res = Err(e),
                }
            }
            if let (Some(size), Some(q)) = (ev.num("QueueSize="), ev.str("scope#QueueName")) {
                let name = match q {
                    "WAITING" => "WaitingQueue".to_string(),
                    "RUNNING" => "RunningQueue".to_string(),
                    other => format!("{other}Queue"),
                };
                res = res.and(t.counter(&name, ev.domain, ev.start, &[("Queue Size", size)]));
            }
            if is_kv(ev.domain, ev.name) {
                let k = KvRow::from_event(ev, proc, self.names.get(ev.name));
                let dp = self.info.dp_rank.map(|d| format!("-dp{d}")).unwrap_or_default();
                if let Some(free) = k.device_block() {
                    res = res.and(t.counter(&format!("{}{dp}", ev.domain), ev.domain, ev.start, &[("Device Block", free)]));
                }
                if let Some(r) = k.rate.get() {
                    res = res.and(t.counter(&format!("KV Usage{dp}"), ev.domain, ev.start, &[("Usage Percent", r * 100.0)]));
                }
            }
            if let Err(e) = res {
                self.io_error.get_or_insert(e.to_string());
            }
        }
        if ev.kind == Kind::Span {
            match self.part.span_names.get_mut(ev.name) {
                Some(n) => *n += 1,
                None => {
                    self.part.span_names.insert(ev.name.to_string(), 1);
                }
            }
            if self.rows.is_some_and(|r| r.contains(ev.name)) {
                self.part.spans.push(SpanRow { name: self.names.get(ev.name), proc, start: ev.start, end: ev.end });
            }
        }
        // Model.
        let (s, e) = (ev.start, ev.end);
        match ev.name {
            "httpReq" | "tokenize" => {
                for r in ev.rids.entries.iter() {
                    let a = self.req(&r.rid, s);
                    a.api = true;
                    if ev.name == "httpReq" {
                        ReqAcc::set_min(&mut a.http_req, s);
                    }
                }
            }
            "httpRes" | "DecodeEnd" | "sendResponse" | "outputSync" => {
                let recv = ev.num("recvTokenSize=");
                let reply = ev.num("replyTokenSize=");
                for r in ev.rids.entries.iter() {
                    let a = self.req(&r.rid, s);
                    let http_res = ev.name == "httpRes";
                    a.http_res |= http_res;
                    let o = a.out_mut();
                    ReqAcc::set_max(&mut o.end, e);
                    match ev.name {
                        "httpRes" => {
                            ReqAcc::set_max(&mut o.http_res_end, e);
                            if let Some(v) = recv {
                                ReqAcc::set_first_f(&mut o.recv_tokens, s, v);
                            }
                            if let Some(v) = reply {
                                ReqAcc::set_first_f(&mut o.reply_tokens, s, v);
                            }
                        }
                        "sendResponse" => ReqAcc::set_first_i(&mut o.first_send, s, e),
                        "outputSync" => o.output_syncs += 1,
                        _ => {}
                    }
                }
            }
            "detokenize" | "decode" => {
                for r in ev.rids.entries.iter() {
                    let a = self.req(&r.rid, s);
                    ReqAcc::set_first_i(&mut a.out_mut().first_detok, s, e);
                }
            }
            "Enqueue" | "Dequeue" => {
                let q = ev.str("scope#QueueName").unwrap_or("");
                if let (true, Some(size), Some(queue)) = (self.rows.is_some(), ev.num("QueueSize="), QueueName::of(q)) {
                    self.part.queue.push(QueueSample { ts: s, size, proc: proc as u32, queue });
                }
                let enq = ev.name == "Enqueue";
                let waiting = q == "WAITING";
                for r in ev.rids.entries.iter() {
                    let a = self.req(&r.rid, s);
                    if waiting {
                        let g = a.sched_mut();
                        ReqAcc::set_min(if enq { &mut g.enqueue_waiting } else { &mut g.dequeue_waiting }, s);
                    }
                }
            }
            "CacheHitRate" => {
                if let Some(h) = ev.num("hitCache") {
                    for r in ev.rids.entries.iter() {
                        let a = self.req(&r.rid, s);
                        ReqAcc::set_first_f(&mut a.sched_mut().cache_hit, s, h);
                    }
                }
            }
            "forward" if ev.kind == Kind::Span => {
                if self.rows.is_some() {
                    self.part.forwards.push(FwdRow::from_event(ev, proc));
                }
            }
            _ => {
                if is_kv(ev.domain, ev.name) {
                    if self.rows.is_some() {
                        let name = self.names.get(ev.name);
                        self.part.kv.push(KvRow::from_event(ev, proc, name));
                    }
                } else if ev.domain != "KVCache" && ev.domain != "PullKVCache" {
                    let exec = ev.name == "modelExec";
                    let iter_row = self.rows.is_some() && batch && (exec || crate::parse::model::batch::SCHEDULE_NAMES.contains(&ev.name));
                    for r in ev.rids.entries.iter() {
                        let a = self.req(&r.rid, s);
                        if exec {
                            a.sched_mut().exec_ns += e - s;
                        }
                        if let (true, Some(i)) = (iter_row, r.iter) {
                            let g = a.sched_mut();
                            g.push_iter_end(IterEnd::new(i, e, exec));
                            if i == 0 {
                                ReqAcc::set_min(&mut g.iter0_start, s);
                                ReqAcc::set_max(&mut g.iter0_end, e);
                            }
                        }
                    }
                }
            }
        }
        if let (true, Some(name)) = (self.rows.is_some(), batch_name) {
            let mut row = BatchRow::from_event(&mut owned, name, proc, batch_type, self.last_entries.as_ref());
            let same = self.last_entries.as_ref().is_some_and(|l| std::sync::Arc::ptr_eq(l, &row.entries));
            self.last_entries = Some(row.entries.clone());
            let mut spilled = None;
            if let (Some(w), true) = (self.spill.as_mut(), row.spillable()) {
                match (same, self.last_ref) {
                    (true, Some(r)) => spilled = Some(r),
                    _ => match w.put(&row.entries) {
                        Ok(r) => spilled = Some(r),
                        Err(e) => {
                            self.io_error.get_or_insert(format!("batch spill: {e}"));
                        }
                    },
                }
            }
            self.last_ref = spilled;
            if spilled.is_some() {
                row.spilled = spilled;
                row.entries = self.empty.clone();
            }
            self.part.batches.push(row);
        }
    }

    /// Finish: flush the trace writer.
    pub fn finish(mut self, report: Report) -> ProcResult {
        let f = match self.trace.take().map(|t| t.finish()) {
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                self.io_error.get_or_insert(e.to_string());
                Finished::default()
            }
            None => Finished::default(),
        };
        let spill = match self.spill.take().map(SpillWriter::finish) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                self.io_error.get_or_insert(format!("batch spill: {e}"));
                None
            }
            None => None,
        };
        match self.flows.take().map(FlowWriter::finish) {
            Some(Ok(f)) => self.part.flow_part = Some(f),
            Some(Err(e)) => {
                self.io_error.get_or_insert(format!("flow spill: {e}"));
            }
            None => {}
        }
        ProcResult {
            spill,
            partial: self.part,
            report,
            domains: self.domains,
            fragment: f.fragment,
            threads: f.threads,
            perfetto: f.perfetto,
            counters: f.counters,
            db_part: f.db,
            io_error: self.io_error,
        }
    }
}

/// Read one process (or one part of it) end to end. `progress` counts records as they are read;
/// `rows`: keep the table rows, with these `span_info` span names (see [`Collector::new`]);
/// `spill` (path, part number) sends batch request lists to a spill file, `flows` (a path)
/// the request flow points (only drawn with a trace writer).
pub fn read_process(
    p: &Process,
    info: &ProcInfo,
    rows: Option<&FxHashSet<String>>,
    trace: Option<TraceOut>,
    flows: Option<std::path::PathBuf>,
    spill: Option<(std::path::PathBuf, u32)>,
    progress: &AtomicU64,
) -> ProcResult {
    let mut c = Collector::new(info, rows, trace);
    if let Some(path) = flows.filter(|_| c.trace.is_some()) {
        match FlowWriter::create(&path, info.trace_pid) {
            Ok(w) => c.flows = Some(w),
            Err(e) => c.io_error = Some(format!("flow spill: {e}")),
        }
    }
    if let Some((path, part)) = spill {
        match SpillWriter::create(&path, part) {
            Ok(w) => c.spill = Some(w),
            Err(e) => c.io_error = Some(format!("batch spill: {e}")),
        }
    }
    let mut n = 0u64;
    let report = p.scan(|it| {
        c.item(&it);
        n += 1;
        if n % 4096 == 0 {
            progress.fetch_add(4096, Ordering::Relaxed);
        }
    });
    progress.fetch_add(n % 4096, Ordering::Relaxed);
    c.finish(report)
}
