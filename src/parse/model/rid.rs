//! Request ids: the three `rid` shapes of the event contract (a scalar, a list, a list of dicts)
//! and the mapping of engine-internal ids back to the API request id.

use std::collections::HashMap;

use serde_json::Value as J;

/// One request in a record, with the per-request fields of the dict shape (absent otherwise).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RidEntry {
    /// The request id as a string.
    pub rid: String,
    /// `iter`: how many times the request was scheduled before (0 = first).
    pub iter: Option<i64>,
    /// `type`: 0 prefill, 1 decode.
    pub typ: Option<i64>,
    /// `num_scheduled_tokens`.
    pub scheduled: Option<f64>,
    /// `num_spec_output_tokens`.
    pub spec_out: Option<f64>,
    /// `num_spec_accepted_tokens`.
    pub spec_accepted: Option<f64>,
}

impl RidEntry {
    /// Prefill when `type` = 0, else (no `type`) when `iter` = 0.
    pub fn is_prefill(&self) -> bool {
        match self.typ {
            Some(t) => t == 0,
            None => self.iter == Some(0),
        }
    }
}

/// The rids of a record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rids {
    /// The requests, in record order.
    pub entries: Vec<RidEntry>,
    /// The original shape was a list of dicts.
    pub dicts: bool,
    /// The original shape was a list (of scalars or dicts).
    pub list: bool,
}

/// A scalar rid as a string (strings as they are, numbers in decimal).
pub fn scalar(v: &J) -> Option<String> {
    match v {
        J::String(s) => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn num(v: Option<&J>) -> Option<f64> {
    match v? {
        J::Number(n) => n.as_f64(),
        J::String(s) => s.trim().parse().ok(),
        J::Bool(b) => Some(*b as u8 as f64),
        _ => None,
    }
}

impl Rids {
    /// Parse the `rid` attribute value.
    pub fn from_value(v: &J) -> Rids {
        match v {
            J::Array(a) => {
                let mut r = Rids { list: true, ..Rids::default() };
                for x in a {
                    match x {
                        J::Object(o) => {
                            r.dicts = true;
                            let Some(rid) = o.get("rid").and_then(scalar) else { continue };
                            r.entries.push(RidEntry {
                                rid,
                                iter: num(o.get("iter")).map(|f| f as i64),
                                typ: num(o.get("type")).map(|f| f as i64),
                                scheduled: num(o.get("num_scheduled_tokens")),
                                spec_out: num(o.get("num_spec_output_tokens")),
                                spec_accepted: num(o.get("num_spec_accepted_tokens")),
                            });
                        }
                        other => {
                            if let Some(rid) = scalar(other) {
                                r.entries.push(RidEntry { rid, ..RidEntry::default() });
                            }
                        }
                    }
                }
                r
            }
            other => Rids { entries: scalar(other).map(|rid| RidEntry { rid, ..RidEntry::default() }).into_iter().collect(), ..Rids::default() },
        }
    }

    /// From the record's typed rids (the C ABI's rid array).
    pub fn from_strings<'a>(it: impl Iterator<Item = &'a [u8]>) -> Rids {
        let entries: Vec<RidEntry> = it.map(|b| RidEntry { rid: String::from_utf8_lossy(b).into_owned(), ..RidEntry::default() }).collect();
        Rids { list: entries.len() > 1, entries, dicts: false }
    }

    /// No request ids.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The rids joined with `,` (the reference's `rid` string).
    pub fn joined(&self) -> String {
        let mut s = String::new();
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&e.rid);
        }
        s
    }
}

/// Whether `rid` can stand for a request in request.csv (the reference excludes empty ids and
/// ids holding `,`, `{` or `:`).
pub fn is_request_id(rid: &str) -> bool {
    !rid.is_empty() && !rid.contains([',', '{', ':'])
}

/// `X-<8 hex>` → `X` (vLLM's randomised internal id).
pub fn strip_internal_suffix(rid: &str) -> Option<&str> {
    let (base, tail) = rid.rsplit_once('-')?;
    (tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_hexdigit()) && !base.is_empty()).then_some(base)
}

/// The id mapping: engine-internal ids and link targets → the API request id.
#[derive(Clone, Debug, Default)]
pub struct RidMap {
    map: HashMap<String, String>,
}

impl RidMap {
    /// Build from the ids seen on `httpReq`/`tokenize` and the links (`from` → `to`, where `from`
    /// is the API-side id): `to` maps to `from`; any `X-<8 hex>` maps to `X` when `X` is an API id.
    pub fn build<'a>(api_ids: impl Iterator<Item = &'a String> + Clone, links: &[(String, String)], all_ids: impl Iterator<Item = &'a String>) -> RidMap {
        let api: std::collections::HashSet<&String> = api_ids.collect();
        let mut map = HashMap::new();
        for (from, to) in links {
            if from != to {
                map.insert(to.clone(), from.clone());
            }
        }
        for id in all_ids {
            if api.contains(id) || map.contains_key(id) {
                continue;
            }
            if let Some(base) = strip_internal_suffix(id) {
                if api.contains(&base.to_string()) {
                    map.insert(id.clone(), base.to_string());
                }
            }
        }
        RidMap { map }
    }

    /// The API id for `rid` (links followed transitively, at most 8 hops), or `rid` itself.
    pub fn resolve<'a>(&'a self, rid: &'a str) -> &'a str {
        let mut cur = rid;
        for _ in 0..8 {
            match self.map.get(cur) {
                Some(n) if n != cur => cur = n,
                _ => break,
            }
        }
        cur
    }

    /// Rewrite the rids inside a `rid` attribute value (scalars, lists, dicts' `rid`).
    pub fn remap_value(&self, v: &J) -> J {
        match v {
            J::String(s) => J::String(self.resolve(s).to_string()),
            J::Array(a) => J::Array(a.iter().map(|x| self.remap_value(x)).collect()),
            J::Object(o) => {
                let mut o = o.clone();
                if let Some(r) = o.get("rid").and_then(scalar) {
                    let m = self.resolve(&r).to_string();
                    if m != r {
                        o.insert("rid".into(), J::String(m));
                    }
                }
                J::Object(o)
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_and_map() {
        let r = Rids::from_value(&json!([{"rid": "a", "iter": 0, "type": 0, "num_scheduled_tokens": 7}, {"rid": 5, "iter": 2}]));
        assert!(r.dicts && r.list);
        assert_eq!(r.entries[0].scheduled, Some(7.0));
        assert_eq!(r.entries[1].rid, "5");
        assert!(!r.entries[1].is_prefill());
        assert_eq!(Rids::from_value(&json!("x")).joined(), "x");
        assert_eq!(Rids::from_value(&json!(["x", "y"])).joined(), "x,y");
        assert_eq!(strip_internal_suffix("cmpl-1-0-deadbeef"), Some("cmpl-1-0"));
        assert_eq!(strip_internal_suffix("cmpl-1"), None);
        let api = ["a".to_string()];
        let all = ["a-0123abcd".to_string(), "b-0123abcd".to_string(), "e1".to_string()];
        let m = RidMap::build(api.iter(), &[("a".into(), "e1".into())], all.iter());
        assert_eq!(m.resolve("a-0123abcd"), "a");
        assert_eq!(m.resolve("b-0123abcd"), "b-0123abcd");
        assert_eq!(m.resolve("e1"), "a");
    }
}
