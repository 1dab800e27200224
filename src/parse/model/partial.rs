//! What reading one process yields; partials of all processes are merged into the model.

use std::collections::HashMap;

use super::batch::BatchRow;
use super::forward::FwdRow;
use super::kv::KvRow;
use super::request::ReqAcc;

/// A point of a request's flow in the trace.
#[derive(Clone, Copy, Debug)]
pub struct FlowPt {
    /// Epoch ns.
    pub ts: i64,
    /// Trace pid.
    pub pid: u64,
    /// Trace tid.
    pub tid: u32,
}

/// A span kept for `span_info/`.
#[derive(Clone, Debug)]
pub struct SpanRow {
    /// Span name.
    pub name: std::sync::Arc<str>,
    /// Process index.
    pub proc: usize,
    /// Start, epoch ns.
    pub start: i64,
    /// End, epoch ns.
    pub end: i64,
}

/// A queue-size sample (`Enqueue`/`Dequeue` with `QueueSize=` and `scope#QueueName`) of one of
/// the queues `request_status.csv` has a column for (24 bytes; one per queue event).
#[derive(Clone, Debug)]
pub struct QueueSample {
    /// Epoch ns.
    pub ts: i64,
    /// Size after the change.
    pub size: f64,
    /// Process index.
    pub proc: u32,
    /// Which queue.
    pub queue: QueueName,
}

/// The queues of `request_status.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueName {
    /// `WAITING`.
    Waiting,
    /// `RUNNING`.
    Running,
    /// `SWAPPED`.
    Swapped,
}

impl QueueName {
    /// From a `scope#QueueName` value; `None` for a queue without a column.
    pub fn of(s: &str) -> Option<QueueName> {
        match s {
            "WAITING" => Some(QueueName::Waiting),
            "RUNNING" => Some(QueueName::Running),
            "SWAPPED" => Some(QueueName::Swapped),
            _ => None,
        }
    }
}

/// The result of reading one process (or several, merged).
#[derive(Default)]
pub struct Partial {
    /// Requests by raw id (boxed: the table's empty slots stay small, and merging and
    /// rehashing move a pointer instead of the accumulator).
    pub requests: hashbrown::HashMap<String, Box<ReqAcc>, rustc_hash::FxBuildHasher>,
    /// Link records (from, to); taken out for the id map before partials are merged.
    pub links: Vec<(String, String)>,
    /// Batch rows.
    pub batches: Vec<BatchRow>,
    /// KV rows.
    pub kv: Vec<KvRow>,
    /// Forward rows.
    pub forwards: Vec<FwdRow>,
    /// Spans for span_info.
    pub spans: Vec<SpanRow>,
    /// Queue samples.
    pub queue: Vec<QueueSample>,
    /// A part's flow points (spilled; see [`super::flows`]), indexed by the accumulators'
    /// part-local [`ReqAcc::flow`] slots.
    pub flow_part: Option<super::flows::FlowPart>,
    /// The merged flows (of a merged partial), indexed by the accumulators' merged slots.
    pub flows: super::flows::Flows,
    /// Span names seen, with counts (all processes).
    pub span_names: HashMap<String, u64>,
    /// Device data (kernels, API calls, usage; see [`super::device`]).
    pub device: super::device::DevicePartial,
}

impl Partial {
    /// An empty partial with exactly the room to merge `parts` (merging many parts into one
    /// must not leave the big vectors with doubled capacity).
    pub fn for_merging<'a>(parts: impl Iterator<Item = &'a Partial> + Clone) -> Partial {
        let n = |f: fn(&Partial) -> usize| parts.clone().map(f).sum::<usize>();
        Partial {
            batches: Vec::with_capacity(n(|p| p.batches.len())),
            kv: Vec::with_capacity(n(|p| p.kv.len())),
            forwards: Vec::with_capacity(n(|p| p.forwards.len())),
            spans: Vec::with_capacity(n(|p| p.spans.len())),
            queue: Vec::with_capacity(n(|p| p.queue.len())),
            ..Partial::default()
        }
    }

    /// Merge `o` (a part's partial; parts in reading order) into `self`, folding each request id
    /// into the API request id `map` gives it (engine-internal ids never reach the merged
    /// table) and the part's flow sums into the merged id's.
    pub fn merge(&mut self, o: Partial, map: &super::rid::RidMap) {
        let mut slots = vec![0u32; o.flow_part.as_ref().map_or(0, |f| f.len())];
        for (k, mut v) in o.requests {
            let local = std::mem::take(&mut v.flow);
            let to = map.resolve(&k);
            let a = if let Some(a) = self.requests.get_mut(to) {
                a.merge(*v);
                a
            } else {
                let to = if to == k.as_str() { k } else { to.to_string() };
                self.requests.entry(to).insert(v).into_mut()
            };
            if let Some(s) = local.checked_sub(1).and_then(|i| slots.get_mut(i as usize)) {
                if a.flow == 0 {
                    a.flow = self.flows.new_id();
                }
                *s = a.flow;
            }
        }
        if let Some(f) = o.flow_part {
            self.flows.add_part(f, slots);
        }
        self.batches.extend(o.batches);
        self.kv.extend(o.kv);
        self.forwards.extend(o.forwards);
        self.spans.extend(o.spans);
        self.queue.extend(o.queue);
        for (k, v) in o.span_names {
            *self.span_names.entry(k).or_default() += v;
        }
        self.device.merge(o.device);
    }
}
