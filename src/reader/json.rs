//! A record as JSON (for `msserviceprofiler dump` and tests): names resolved, wall-clock times,
//! typed and verbatim-JSON attributes merged into one object.

use serde_json::{json, Map, Value as J};

use super::ProcessMeta;
use crate::record::{flags, Kind, Value, View};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The attributes of a record as one object: the typed ones, then the JSON object's keys.
pub fn attrs(m: &ProcessMeta, v: &View<'_>) -> Map<String, J> {
    let mut o = Map::new();
    for a in v.attrs() {
        let val = match a.value {
            Value::Int(i) => J::from(i),
            Value::Float(f) => J::from(f),
            Value::Bool(b) => J::from(b),
            Value::Str(s) => J::from(text(s)),
            Value::Json(s) => serde_json::from_slice(s).unwrap_or_else(|_| J::from(text(s))),
        };
        o.insert(m.string(a.key).to_string(), val);
    }
    if let Some(j) = v.json() {
        match serde_json::from_slice::<J>(j) {
            Ok(J::Object(extra)) => o.extend(extra),
            Ok(other) => {
                o.insert("_json".into(), other);
            }
            Err(_) => {
                o.insert("_json_invalid".into(), J::from(text(j)));
            }
        }
    }
    o
}

/// One record as a JSON object.
pub fn record(m: &ProcessMeta, v: &View<'_>) -> J {
    let kind = match v.kind {
        Kind::Span => "span",
        Kind::Event => "event",
        Kind::Metric => "metric",
        Kind::Link => "link",
    };
    let mut o = json!({
        "pid": m.pid,
        "host": m.hostname,
        "tid": v.tid,
        "kind": kind,
        "domain": m.string(v.domain),
        "name": m.string(v.name),
        "ts_ns": m.to_wall(v.t0),
        "mono_ns": v.t0,
    });
    let obj = o.as_object_mut().unwrap();
    match v.kind {
        Kind::Span => {
            obj.insert("dur_ns".into(), J::from((v.t1 as i64).saturating_sub(v.t0 as i64)));
        }
        Kind::Metric => {
            obj.insert("value".into(), J::from(v.metric_value()));
            obj.insert("delta".into(), J::from(v.flags & flags::DELTA != 0));
        }
        _ => {}
    }
    let rids: Vec<J> = v.rids().map(|r| J::from(text(r))).collect();
    if !rids.is_empty() {
        obj.insert("rids".into(), J::from(rids));
    }
    obj.insert("attrs".into(), J::Object(attrs(m, v)));
    o
}
