//! The normalised event: one ring record with names resolved, wall-clock times, merged
//! attributes and parsed rids.

use serde_json::Value as J;

use super::attrs::{AttrCache, Attrs};
use super::rid::Rids;
use crate::reader::Item;
use crate::record::Kind;

/// One record, ready for the model and the exporters.
pub struct Event<'a> {
    /// Span, event, metric or link.
    pub kind: Kind,
    /// Domain (`Engine`, `Schedule`, `Schedule.KVCache`, `Execute`, …).
    pub domain: &'a str,
    /// Name (`httpReq`, `batchFrameworkProcessing`, …).
    pub name: &'a str,
    /// Start, epoch ns.
    pub start: i64,
    /// End, epoch ns (= start for instants).
    pub end: i64,
    /// OS thread id.
    pub tid: u32,
    /// All attributes (typed and JSON) except `rid`.
    pub attrs: Attrs<'a>,
    /// The request ids (typed rids first, else the `rid` attribute).
    pub rids: Rids,
    /// For metric records, the value.
    pub value: Option<f64>,
}

impl<'a> Event<'a> {
    /// Normalise one record.
    pub fn from_item(it: &Item<'a>) -> Event<'a> {
        Event::from_item_cached(it, None)
    }

    /// As [`from_item`](Self::from_item), reusing the decoding of a repeated large JSON object.
    pub fn from_item_cached(it: &Item<'a>, cache: Option<&mut AttrCache>) -> Event<'a> {
        let (m, v) = (it.process, &it.record);
        let mut attrs = Attrs::decode_cached(m, v, cache);
        let start = m.to_wall(v.t0);
        let end = if v.kind == Kind::Span && v.t1 >= v.t0 { start.saturating_add((v.t1 - v.t0).min(i64::MAX as u64) as i64) } else { start };
        let mut rids = Rids::from_strings(v.rids());
        if rids.is_empty() {
            if let Some(r) = attrs.rid.take() {
                rids = r;
            }
        }
        Event {
            kind: v.kind,
            domain: m.string(v.domain),
            name: m.string(v.name),
            start,
            end,
            tid: v.tid,
            attrs,
            rids,
            value: (v.kind == Kind::Metric).then(|| v.metric_value()),
        }
    }

    /// Duration in ns.
    pub fn dur(&self) -> i64 {
        self.end - self.start
    }

    /// A numeric attribute (numbers, numeric strings, booleans); `None` for null or absent.
    pub fn num(&self, key: &str) -> Option<f64> {
        num(self.attrs.get(key))
    }

    /// A string attribute.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(|v| v.as_str())
    }
}

/// A JSON value as a number, when it is one (or a numeric string, or a boolean).
pub fn num(v: Option<&J>) -> Option<f64> {
    match v? {
        J::Number(n) => n.as_f64(),
        J::String(s) => s.trim().parse().ok(),
        J::Bool(b) => Some(*b as u8 as f64),
        _ => None,
    }
}
