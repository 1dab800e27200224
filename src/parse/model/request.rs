//! Per-request accumulation. Every field is mergeable (min, max, sum, earliest-by-time), so the
//! processes can be read in parallel and in any order, and engine ids merged into API ids later.
//! Times are [`Ns`] (an optional time in 8 bytes): the accumulators are most of the model.

pub use super::iter_ends::IterEnd;
use super::iter_ends::IterEnds;
use super::ns::{self, Ns};

/// A value with the time it was seen; merging keeps the earliest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct First<T> {
    /// When (epoch ns).
    pub ts: Ns,
    /// What.
    pub v: T,
}

fn first<T: Copy>(a: Option<First<T>>, b: Option<First<T>>) -> Option<First<T>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.ts.get() < x.ts.get() { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn min(a: Option<Ns>, b: Option<Ns>) -> Option<Ns> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.get() < x.get() { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max(a: Option<Ns>, b: Option<Ns>) -> Option<Ns> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.get() > x.get() { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// What is known about one request id. The fields come in three groups by the records that
/// set them: always here, [`OutAcc`] (the response side, recorded by the API server) and
/// [`SchedAcc`] (scheduling and execution, recorded by the engine); each id is usually seen by
/// one side only, so the other group is never allocated.
#[derive(Clone, Debug, Default)]
pub struct ReqAcc {
    /// Earliest time the id was seen in any record.
    pub first_seen: Option<Ns>,
    /// Start of the first `httpReq`.
    pub http_req: Option<Ns>,
    /// The response-side group.
    pub out: Option<Box<OutAcc>>,
    /// The engine-side group.
    pub sched: Option<Box<SchedAcc>>,
    /// An `httpRes` was seen.
    pub http_res: bool,
    /// The id was seen on `httpReq`/`tokenize` (an API-side id).
    pub api: bool,
    /// Its flow slot (index + 1; 0: no flow points): part-local while a part is read, of the
    /// merged [`super::flows::Flows`] after [`super::partial::Partial::merge`]; not merged by
    /// [`ReqAcc::merge`].
    pub flow: u32,
}

/// The response side of a request: `httpRes`, `DecodeEnd`, `sendResponse`, `outputSync`,
/// `detokenize`.
#[derive(Clone, Debug, Default)]
pub struct OutAcc {
    /// Latest end of `httpRes`/`DecodeEnd`/`sendResponse`/`outputSync`.
    pub end: Option<Ns>,
    /// Latest end of `httpRes` alone (service throughput).
    pub http_res_end: Option<Ns>,
    /// First non-null `recvTokenSize=`.
    pub recv_tokens: Option<First<f64>>,
    /// First non-null `replyTokenSize=`.
    pub reply_tokens: Option<First<f64>>,
    /// TTFT set: the first `detokenize` (start, end).
    pub first_detok: Option<First<i64>>,
    /// TTFT set: the first `sendResponse` (start, end).
    pub first_send: Option<First<i64>>,
    /// Number of `outputSync` records.
    pub output_syncs: u64,
}

impl OutAcc {
    fn merge(&mut self, o: &OutAcc) {
        self.end = max(self.end, o.end);
        self.http_res_end = max(self.http_res_end, o.http_res_end);
        self.recv_tokens = first(self.recv_tokens, o.recv_tokens);
        self.reply_tokens = first(self.reply_tokens, o.reply_tokens);
        self.first_detok = first(self.first_detok, o.first_detok);
        self.first_send = first(self.first_send, o.first_send);
        self.output_syncs += o.output_syncs;
    }
}

/// The engine side of a request: queueing, batches it was in, cache hits.
#[derive(Clone, Debug, Default)]
pub struct SchedAcc {
    /// First `Enqueue` into `WAITING`.
    pub enqueue_waiting: Option<Ns>,
    /// First `Dequeue` out of `WAITING`.
    pub dequeue_waiting: Option<Ns>,
    /// TTFT set: latest end of iter-0 schedule/execute rows.
    pub iter0_end: Option<Ns>,
    /// TTFT set: earliest start of iter-0 schedule/execute rows.
    pub iter0_start: Option<Ns>,
    /// `hitCache` of the first `CacheHitRate`.
    pub cache_hit: Option<First<f64>>,
    /// Σ `modelExec` durations containing the request (ns).
    pub exec_ns: i64,
    /// Per iteration: end of the execute row (or the schedule row when none), for TPOT.
    pub iter_ends: IterEnds,
}

impl SchedAcc {
    fn merge(&mut self, o: &SchedAcc) {
        self.enqueue_waiting = min(self.enqueue_waiting, o.enqueue_waiting);
        self.dequeue_waiting = min(self.dequeue_waiting, o.dequeue_waiting);
        self.iter0_end = max(self.iter0_end, o.iter0_end);
        self.iter0_start = min(self.iter0_start, o.iter0_start);
        self.cache_hit = first(self.cache_hit, o.cache_hit);
        self.exec_ns += o.exec_ns;
        self.iter_ends.extend(&o.iter_ends);
    }

    /// Note the end of an iteration. The schedule and execute rows of one iteration arrive one
    /// after the other: they are folded into one entry by the rule of
    /// [`ReqAcc::tpot_samples`] (execute rows win, then the latest end), so the list holds about
    /// one entry per iteration.
    pub fn push_iter_end(&mut self, x: IterEnd) {
        match self.iter_ends.last_mut() {
            Some(l) if l.iter() == x.iter() => {
                if (x.exec() && !l.exec()) || (x.exec() == l.exec() && x.end > l.end) {
                    *l = x;
                }
            }
            _ => self.iter_ends.push(x),
        }
    }
}

impl ReqAcc {
    /// Seen in a record the model reads (not only as a flow point of the trace).
    pub fn is_seen(&self) -> bool {
        self.first_seen.is_some()
    }

    /// Note that the id appeared at `ts`.
    pub fn seen(&mut self, ts: i64) {
        self.first_seen = min(self.first_seen, Some(Ns::new(ts)));
    }

    /// [`first_seen`](Self::first_seen), ns.
    pub fn first_seen(&self) -> Option<i64> {
        ns::get(self.first_seen)
    }

    /// [`http_req`](Self::http_req), ns.
    pub fn http_req(&self) -> Option<i64> {
        ns::get(self.http_req)
    }

    /// The response-side group, created when first needed.
    pub fn out_mut(&mut self) -> &mut OutAcc {
        self.out.get_or_insert_with(Default::default)
    }

    /// The engine-side group, created when first needed.
    pub fn sched_mut(&mut self) -> &mut SchedAcc {
        self.sched.get_or_insert_with(Default::default)
    }

    /// [`OutAcc::end`], ns.
    pub fn end(&self) -> Option<i64> {
        ns::get(self.out.as_ref()?.end)
    }

    /// [`OutAcc::http_res_end`], ns.
    pub fn http_res_end(&self) -> Option<i64> {
        ns::get(self.out.as_ref()?.http_res_end)
    }

    /// [`OutAcc::recv_tokens`].
    pub fn recv_tokens(&self) -> Option<First<f64>> {
        self.out.as_ref()?.recv_tokens
    }

    /// [`SchedAcc::iter0_start`], ns.
    pub fn iter0_start(&self) -> Option<i64> {
        ns::get(self.sched.as_ref()?.iter0_start)
    }

    /// [`SchedAcc::iter0_end`], ns.
    pub fn iter0_end(&self) -> Option<i64> {
        ns::get(self.sched.as_ref()?.iter0_end)
    }

    /// [`SchedAcc::cache_hit`].
    pub fn cache_hit(&self) -> Option<First<f64>> {
        self.sched.as_ref()?.cache_hit
    }

    /// [`SchedAcc::exec_ns`].
    pub fn exec_ns(&self) -> i64 {
        self.sched.as_ref().map_or(0, |s| s.exec_ns)
    }

    /// [`SchedAcc::iter_ends`], in order.
    pub fn iter_ends(&self) -> impl Iterator<Item = IterEnd> + '_ {
        self.sched.iter().flat_map(|s| s.iter_ends.iter())
    }

    /// Merge another accumulator (of the same or a mapped id) into this one. A group this one
    /// lacks is moved over, not copied.
    pub fn merge(&mut self, o: ReqAcc) {
        self.first_seen = min(self.first_seen, o.first_seen);
        self.http_req = min(self.http_req, o.http_req);
        self.http_res |= o.http_res;
        self.api |= o.api;
        match (&mut self.out, o.out) {
            (Some(a), Some(b)) => a.merge(&b),
            (a, b) => *a = a.take().or(b),
        }
        match (&mut self.sched, o.sched) {
            (Some(a), Some(b)) => a.merge(&b),
            (a, b) => *a = a.take().or(b),
        }
    }

    /// Earliest-by-time setters used by the collector.
    pub fn set_first_f(slot: &mut Option<First<f64>>, ts: i64, v: f64) {
        *slot = first(*slot, Some(First { ts: Ns::new(ts), v }));
    }

    /// As [`set_first_f`](Self::set_first_f), for an end time.
    pub fn set_first_i(slot: &mut Option<First<i64>>, ts: i64, v: i64) {
        *slot = first(*slot, Some(First { ts: Ns::new(ts), v }));
    }

    /// Min into a slot.
    pub fn set_min(slot: &mut Option<Ns>, v: i64) {
        *slot = min(*slot, Some(Ns::new(v)));
    }

    /// Max into a slot.
    pub fn set_max(slot: &mut Option<Ns>, v: i64) {
        *slot = max(*slot, Some(Ns::new(v)));
    }

    /// Time to first token, ns: max(end) − min(start) over {httpReq, iter-0 rows, first
    /// detokenize, first sendResponse}, kept only when the set has more than `httpReq` and
    /// `httpReq` is its earliest member.
    pub fn ttft_ns(&self) -> Option<i64> {
        let start = self.http_req()?;
        let mut others_start = Vec::new();
        let mut end = start;
        if let (Some(s), Some(e)) = (self.iter0_start(), self.iter0_end()) {
            others_start.push(s);
            end = end.max(e);
        }
        let out = self.out.as_deref();
        if let Some(d) = out.and_then(|o| o.first_detok) {
            others_start.push(d.ts.get());
            end = end.max(d.v);
        }
        if let Some(d) = out.and_then(|o| o.first_send) {
            others_start.push(d.ts.get());
            end = end.max(d.v);
        }
        if others_start.is_empty() || others_start.iter().any(|&s| s < start) {
            return None;
        }
        Some(end - start)
    }

    /// Queue wait, ns: first `Dequeue` out of `WAITING` − first `Enqueue` into `WAITING`.
    pub fn queue_wait_ns(&self) -> Option<i64> {
        let s = self.sched.as_deref()?;
        match (ns::get(s.enqueue_waiting), ns::get(s.dequeue_waiting)) {
            (Some(a), Some(b)) if b >= a => Some(b - a),
            _ => None,
        }
    }

    /// Request execution time, ns: last end − first `httpReq`.
    pub fn execution_ns(&self) -> Option<i64> {
        Some(self.end()? - self.http_req()?).filter(|d| *d >= 0)
    }

    /// `reply_token_size`: the count of `outputSync` rows when there are any, else
    /// `replyTokenSize=`.
    pub fn reply(&self) -> Option<f64> {
        let o = self.out.as_deref()?;
        if o.output_syncs > 0 {
            Some(o.output_syncs as f64)
        } else {
            o.reply_tokens.map(|f| f.v)
        }
    }

    /// Inter-token latencies, ns: differences of consecutive iteration ends, one end per
    /// iteration (execute rows win over schedule rows; among equals the latest end).
    pub fn tpot_samples(&self) -> Vec<i64> {
        let mut v: Vec<(i64, bool, i64)> = self.iter_ends().map(|e| (e.iter(), e.exec(), e.end)).collect();
        v.sort_unstable();
        // The last entry of each iteration's run is its largest (exec, end): the one kept.
        let ends: Vec<i64> = v.iter().enumerate().filter(|(k, x)| v.get(k + 1).map_or(true, |n| n.0 != x.0)).map(|(_, x)| x.2).collect();
        ends.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sort-based TPOT equals the per-iteration "best entry" rule applied in any order.
    #[test]
    fn tpot_matches_per_iteration_rule() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..500 {
            let mut a = ReqAcc::default();
            let ends = &mut a.sched_mut().iter_ends;
            let n = (x % 40) as usize;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ends.push(IterEnd::new((x % 9) as i64, ((x >> 8) % 50) as i64, (x >> 20) & 1 == 1));
            }
            let mut by_iter: std::collections::BTreeMap<i64, (bool, i64)> = Default::default();
            for e in a.iter_ends() {
                let slot = by_iter.entry(e.iter()).or_insert((e.exec(), e.end));
                if (e.exec() && !slot.0) || (e.exec() == slot.0 && e.end > slot.1) {
                    *slot = (e.exec(), e.end);
                }
            }
            let ends: Vec<i64> = by_iter.values().map(|v| v.1).collect();
            let want: Vec<i64> = ends.windows(2).map(|w| w[1] - w[0]).collect();
            assert_eq!(a.tpot_samples(), want);
        }
    }
}
