//! Assembling the merged partials into the model every exporter reads (immutable from then on;
//! units are fixed per field: ns everywhere, converted only when a cell is written).

use std::collections::HashMap;

use crate::parse::export::trace::ThreadInfo;
use crate::parse::model::batch::{self, BatchRow};
use crate::parse::model::device::DeviceModel;
use crate::parse::model::forward::{self, FwdRow};
use crate::parse::model::kv::KvRow;
use crate::parse::model::partial::{FlowPt, Partial, QueueSample, SpanRow};
use crate::parse::model::process::{ProcInfo, Role};
use crate::parse::model::request::ReqAcc;
use crate::parse::model::rid::{is_request_id, RidMap};
use crate::parse::model::spill::SpillStore;

/// A request after id mapping.
#[derive(Clone, Debug)]
pub struct RequestRow {
    /// The API request id.
    pub rid: String,
    /// Everything known about it (merged over its internal ids; boxed, so sorting the rows
    /// moves pointers).
    pub acc: Box<ReqAcc>,
}

impl RequestRow {
    /// Has both `httpReq` and `httpRes` (a valid request for the summaries).
    pub fn valid(&self) -> bool {
        self.acc.http_req.is_some() && self.acc.http_res
    }
}

/// The model.
pub struct Model {
    /// Processes, by index.
    pub procs: Vec<ProcInfo>,
    /// Role of each process.
    pub roles: Vec<Role>,
    /// Trace threads of each process.
    pub threads: Vec<Vec<ThreadInfo>>,
    /// Id mapping.
    pub map: RidMap,
    /// Requests sorted by start.
    pub requests: Vec<RequestRow>,
    /// Batch rows in time order.
    pub batches: Vec<BatchRow>,
    /// The schedule name in use.
    pub sched_name: &'static str,
    /// KV rows in time order.
    pub kv: Vec<KvRow>,
    /// Forward rows in time order, finished.
    pub forwards: Vec<FwdRow>,
    /// span_info spans.
    pub spans: Vec<SpanRow>,
    /// Queue samples in time order.
    pub queue: Vec<QueueSample>,
    /// Flow points by mapped rid, each in time order.
    pub flows: Vec<(String, Vec<FlowPt>)>,
    /// Span names and counts.
    pub span_names: HashMap<String, u64>,
    /// Device data joined and attributed (see [`crate::parse::model::device`]).
    pub device: DeviceModel,
    /// The spilled batch request lists (see [`crate::parse::model::spill::entries_of`]).
    pub spill: SpillStore,
}

impl Model {
    /// Build from the merged partial.
    pub fn build(procs: Vec<ProcInfo>, roles: Vec<Role>, threads: Vec<Vec<ThreadInfo>>, p: Partial) -> Model {
        let map = RidMap::build(p.requests.iter().filter(|(_, a)| a.api).map(|(k, _)| k), &p.links);
        // Fold mapped ids into their API id in place (no second map of every request).
        let mut merged = p.requests;
        let mut moved: Vec<String> = merged.keys().filter(|k| map.resolve(k) != k.as_str()).cloned().collect();
        moved.sort();
        for k in moved {
            let Some(v) = merged.remove(&k) else { continue };
            let to = map.resolve(&k).to_string();
            match merged.get_mut(&to) {
                Some(a) => a.merge(*v),
                None => {
                    merged.insert(to, v);
                }
            }
        }
        let mut requests: Vec<RequestRow> = Vec::with_capacity(merged.len());
        requests.extend(merged.into_iter().filter(|(k, _)| is_request_id(k)).map(|(rid, acc)| RequestRow { rid, acc }));
        requests.sort_by(|a, b| {
            let ka = (a.acc.http_req.is_none(), a.acc.http_req().or(a.acc.first_seen()).unwrap_or(i64::MAX), &a.rid);
            let kb = (b.acc.http_req.is_none(), b.acc.http_req().or(b.acc.first_seen()).unwrap_or(i64::MAX), &b.rid);
            ka.cmp(&kb)
        });
        let mut kv = p.kv;
        kv.sort_by(|a, b| (a.ts, a.proc).cmp(&(b.ts, b.proc)));
        let (batches, sched_name) = batch::finish(p.batches, &kv);
        let hosts: Vec<usize> = procs.iter().map(|p| p.host_index).collect();
        let forwards = forward::finish(p.forwards, &batches, |i| hosts[i]);
        let mut spans = p.spans;
        spans.sort_by(|a, b| (a.start, a.proc).cmp(&(b.start, b.proc)));
        let mut queue = p.queue;
        queue.sort_by(|a, b| (a.ts, a.proc).cmp(&(b.ts, b.proc)));
        let mut fl: HashMap<String, Vec<FlowPt>> = HashMap::new();
        for (k, v) in p.flows {
            fl.entry(map.resolve(&k).to_string()).or_default().extend(v);
        }
        let mut flows: Vec<(String, Vec<FlowPt>)> = fl.into_iter().collect();
        for (_, v) in flows.iter_mut() {
            v.sort_by(|a, b| (a.ts, a.pid, a.tid).cmp(&(b.ts, b.pid, b.tid)));
        }
        flows.sort_by(|a, b| (a.1[0].ts, &a.0).cmp(&(b.1[0].ts, &b.0)));
        // The rows device time is attributed to (none to attribute: no copies of every row).
        let (fw, bt): (Vec<(usize, i64, i64)>, Vec<Option<(usize, i64, i64)>>) = if p.device.has_activity() {
            (
                forwards.iter().map(|f| (f.proc, f.start, f.end)).collect(),
                batches.iter().map(|b| b.name.is_exec().then_some((b.proc as usize, b.start, b.end))).collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let device = DeviceModel::build(p.device, &fw, &bt, |i| procs[i].trace_pid);
        Model {
            procs,
            roles,
            threads,
            map,
            requests,
            batches,
            sched_name,
            kv,
            forwards,
            spans,
            queue,
            flows,
            span_names: p.span_names,
            device,
            spill: SpillStore::default(),
        }
    }
}
