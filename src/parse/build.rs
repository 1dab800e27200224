//! Assembling the merged partials into the model every exporter reads (immutable from then on;
//! units are fixed per field: ns everywhere, converted only when a cell is written).

use std::collections::HashMap;

use crate::parse::export::trace::ThreadInfo;
use crate::parse::model::batch::{self, BatchRow};
use crate::parse::model::device::DeviceModel;
use crate::parse::model::flows::Flows;
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
    /// Request flows (points spilled to disk, sums by mapped rid).
    pub flows: Flows,
    /// Span names and counts.
    pub span_names: HashMap<String, u64>,
    /// Device data joined and attributed (see [`crate::parse::model::device`]).
    pub device: DeviceModel,
    /// The spilled batch request lists (see [`crate::parse::model::spill::entries_of`]).
    pub spill: SpillStore,
}

impl Model {
    /// Every flow point the trace and profiler.db draw, as (flow id, point, phase): the
    /// requests' flows streamed from their spill files, then the API→kernel flows of the device
    /// data; `io` converts a failure reading the spill files.
    pub fn for_each_flow_point<E>(&self, mut f: impl FnMut(&str, FlowPt, &'static str) -> Result<(), E>, io: impl Fn(std::io::Error) -> E) -> Result<(), E> {
        self.flows.for_each(&mut f, io)?;
        for (rid, pts) in &self.device.flows {
            if pts.len() < 2 {
                continue;
            }
            for (k, p) in pts.iter().enumerate() {
                f(rid, *p, crate::parse::export::chrome::flow_phase(k, pts.len()))?;
            }
        }
        Ok(())
    }

    /// Build from the merged partial, whose requests are keyed by the ids `map` resolves to
    /// (see [`Partial::merge`]).
    pub fn build(procs: Vec<ProcInfo>, roles: Vec<Role>, threads: Vec<Vec<ThreadInfo>>, p: Partial, map: RidMap) -> Model {
        let merged = p.requests;
        let mut flows = p.flows;
        flows.set_names(merged.iter().map(|(k, a)| (a.flow, k.as_str())));
        let mut requests: Vec<RequestRow> = Vec::with_capacity(merged.len());
        // Ids only drawn as flow points (not seen by the model) are not requests.
        requests.extend(merged.into_iter().filter(|(k, a)| a.is_seen() && is_request_id(k)).map(|(rid, acc)| RequestRow { rid, acc }));
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
        // The rows device time is attributed to (none to attribute: no copies of every row).
        let dev = p.device.has_activity();
        let fw: Vec<(usize, i64, i64)> = if dev { forwards.iter().map(|f| (f.proc, f.start, f.end)).collect() } else { Vec::new() };
        let bt: Vec<Option<(usize, i64, i64)>> =
            if dev { batches.iter().map(|b| b.name.is_exec().then_some((b.proc as usize, b.start, b.end))).collect() } else { Vec::new() };
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
