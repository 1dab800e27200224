//! Request ids: the three `rid` shapes of the event contract (a scalar, a list, a list of dicts)
//! and the mapping of engine-internal ids back to the API request id.

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
    /// `num_prompt_tokens`.
    pub prompt: Option<f64>,
    /// `num_computed_tokens`.
    pub computed: Option<f64>,
    /// `num_spec_output_tokens`.
    pub spec_out: Option<f64>,
    /// `num_spec_accepted_tokens`.
    pub spec_accepted: Option<f64>,
}

impl RidEntry {
    /// The optional dict fields with their keys, in the contract's order (`rid` excluded).
    pub fn fields(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("iter", self.iter.map(|i| i as f64)),
            ("type", self.typ.map(|i| i as f64)),
            ("num_scheduled_tokens", self.scheduled),
            ("num_prompt_tokens", self.prompt),
            ("num_computed_tokens", self.computed),
            ("num_spec_output_tokens", self.spec_out),
            ("num_spec_accepted_tokens", self.spec_accepted),
        ]
    }

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
    /// The requests, in record order (shared: a repeated list is decoded once, see
    /// [`AttrCache`](super::attrs::AttrCache), and batch rows keep it without a copy).
    pub entries: std::sync::Arc<Vec<RidEntry>>,
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
                let entries = std::sync::Arc::make_mut(&mut r.entries);
                for x in a {
                    match x {
                        J::Object(o) => {
                            r.dicts = true;
                            let Some(rid) = o.get("rid").and_then(scalar) else { continue };
                            entries.push(RidEntry {
                                rid,
                                iter: num(o.get("iter")).map(|f| f as i64),
                                typ: num(o.get("type")).map(|f| f as i64),
                                scheduled: num(o.get("num_scheduled_tokens")),
                                prompt: num(o.get("num_prompt_tokens")),
                                computed: num(o.get("num_computed_tokens")),
                                spec_out: num(o.get("num_spec_output_tokens")),
                                spec_accepted: num(o.get("num_spec_accepted_tokens")),
                            });
                        }
                        other => {
                            if let Some(rid) = scalar(other) {
                                entries.push(RidEntry { rid, ..RidEntry::default() });
                            }
                        }
                    }
                }
                r
            }
            other => {
                Rids { entries: std::sync::Arc::new(scalar(other).map(|rid| RidEntry { rid, ..RidEntry::default() }).into_iter().collect()), ..Rids::default() }
            }
        }
    }

    /// From the record's typed rids (the C ABI's rid array).
    pub fn from_strings<'a>(it: impl Iterator<Item = &'a [u8]>) -> Rids {
        let entries: Vec<RidEntry> = it.map(|b| RidEntry { rid: lossy_string(b), ..RidEntry::default() }).collect();
        Rids { list: entries.len() > 1, entries: std::sync::Arc::new(entries), dicts: false }
    }

    /// No request ids.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Rebuild the `rid` structure (`res_list`) with ids mapped through `map`: dicts with the
    /// known keys in the contract's order, or a list of ids.
    pub fn to_value(entries: &[RidEntry], dicts: bool, map: &RidMap) -> J {
        J::Array(
            entries
                .iter()
                .map(|e| {
                    let rid = J::String(map.resolve(&e.rid).to_string());
                    if !dicts {
                        return rid;
                    }
                    let mut o = serde_json::Map::new();
                    o.insert("rid".into(), rid);
                    let f = |x: f64| if x.fract() == 0.0 && x.abs() < 9e15 { J::from(x as i64) } else { J::from(x) };
                    for (k, v) in e.fields() {
                        if let Some(v) = v {
                            o.insert(k.into(), f(v));
                        }
                    }
                    J::Object(o)
                })
                .collect(),
        )
    }

    /// As [`to_value`](Self::to_value), written straight to JSON text (no tree).
    pub fn write_json(out: &mut String, entries: &[RidEntry], dicts: bool, map: &RidMap) {
        let mut v = std::mem::take(out).into_bytes();
        Self::write_json_bytes(&mut v, entries, dicts, map, false);
        *out = String::from_utf8(v).expect("JSON text is UTF-8");
    }

    /// As [`write_json`](Self::write_json), appended to bytes; with `csv`, every `"` of the JSON
    /// text is doubled (the inside of a quoted CSV cell).
    pub fn write_json_bytes(out: &mut Vec<u8>, entries: &[RidEntry], dicts: bool, map: &RidMap, csv: bool) {
        /// `{"rid": `, then `, "<key>": ` per field of [`RidEntry::fields`]: JSON, then CSV-quoted.
        const PRE: [[&[u8]; 8]; 2] = [
            [
                b"{\"rid\": ",
                b", \"iter\": ",
                b", \"type\": ",
                b", \"num_scheduled_tokens\": ",
                b", \"num_prompt_tokens\": ",
                b", \"num_computed_tokens\": ",
                b", \"num_spec_output_tokens\": ",
                b", \"num_spec_accepted_tokens\": ",
            ],
            [
                b"{\"\"rid\"\": ",
                b", \"\"iter\"\": ",
                b", \"\"type\"\": ",
                b", \"\"num_scheduled_tokens\"\": ",
                b", \"\"num_prompt_tokens\"\": ",
                b", \"\"num_computed_tokens\"\": ",
                b", \"\"num_spec_output_tokens\"\": ",
                b", \"\"num_spec_accepted_tokens\"\": ",
            ],
        ];
        let pre = &PRE[csv as usize];
        let q: &[u8] = if csv { b"\"\"" } else { b"\"" };
        let num = |out: &mut Vec<u8>, x: f64| {
            if x.fract() == 0.0 && x.abs() < 9e15 {
                out.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
            } else if x.is_finite() {
                use std::io::Write;
                let _ = write!(out, "{x}");
            } else {
                out.extend_from_slice(b"null");
            }
        };
        out.push(b'[');
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            if dicts {
                out.extend_from_slice(pre[0]);
            }
            let rid = map.resolve(&e.rid);
            if rid.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f) {
                out.reserve(rid.len() + 2 * q.len());
                out.extend_from_slice(q);
                out.extend_from_slice(rid.as_bytes());
                out.extend_from_slice(q);
            } else {
                for b in serde_json::to_string(rid).unwrap_or_default().bytes() {
                    if b == b'"' {
                        out.extend_from_slice(q);
                    } else {
                        out.push(b);
                    }
                }
            }
            if dicts {
                for (k, (_, v)) in e.fields().into_iter().enumerate() {
                    if let Some(v) = v {
                        out.extend_from_slice(pre[k + 1]);
                        num(out, v);
                    }
                }
                out.push(b'}');
            }
        }
        out.push(b']');
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

/// `String::from_utf8_lossy(b).into_owned()`, with the fast validation of `from_utf8` first
/// (the lossy scan is byte by byte).
pub fn lossy_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
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

/// The id mapping: engine-internal ids and link targets → the API request id. It keeps the
/// links and the set of API ids; an `X-<8 hex>` id is mapped to `X` when it is looked up (a
/// table of every engine id would hold two strings per request).
#[derive(Clone, Debug, Default)]
pub struct RidMap {
    links: rustc_hash::FxHashMap<String, String>,
    api: rustc_hash::FxHashSet<Box<str>>,
}

impl RidMap {
    /// Build from the ids seen on `httpReq`/`tokenize` and the links (`from` → `to`, where `from`
    /// is the API-side id): `to` maps to `from`; any `X-<8 hex>` maps to `X` when `X` is an API id
    /// (and the id itself is neither an API id nor a link target).
    pub fn build<'a>(api_ids: impl Iterator<Item = &'a String>, links: &[(String, String)]) -> RidMap {
        let mut map = rustc_hash::FxHashMap::default();
        for (from, to) in links {
            if from != to {
                map.insert(to.clone(), from.clone());
            }
        }
        RidMap { links: map, api: api_ids.map(|s| Box::from(s.as_str())).collect() }
    }

    /// The API id for `rid` (links followed transitively, at most 8 hops), or `rid` itself.
    pub fn resolve<'a>(&'a self, rid: &'a str) -> &'a str {
        let mut cur = rid;
        for _ in 0..8 {
            if let Some(n) = self.links.get(cur) {
                if n == cur {
                    break;
                }
                cur = n;
                continue;
            }
            if self.api.contains(cur) {
                break;
            }
            match strip_internal_suffix(cur) {
                Some(base) if self.api.contains(base) => cur = base,
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
        let m = RidMap::build(api.iter(), &[("a".into(), "e1".into())]);
        let r = Rids::from_value(&json!([{"rid": "a-0123abcd", "iter": 0, "type": 0, "num_scheduled_tokens": 7.5}, {"rid": "q\"", "iter": 1}]));
        let mut s = String::new();
        Rids::write_json(&mut s, &r.entries, true, &m);
        assert_eq!(serde_json::from_str::<J>(&s).unwrap(), Rids::to_value(&r.entries, true, &m));
        // The CSV form is the JSON text with its quotes doubled.
        let mut c = Vec::new();
        Rids::write_json_bytes(&mut c, &r.entries, true, &m, true);
        assert_eq!(String::from_utf8(c).unwrap(), s.replace('"', "\"\""));
        assert_eq!(m.resolve("a-0123abcd"), "a");
        assert_eq!(m.resolve("b-0123abcd"), "b-0123abcd");
        assert_eq!(m.resolve("e1"), "a");
        // An API id of the `X-<8 hex>` shape is itself; a suffixed link target follows the link.
        let api = ["a".to_string(), "c-0123abcd".to_string(), "d".to_string()];
        let m = RidMap::build(api.iter(), &[("d".into(), "c".into())]);
        assert_eq!(m.resolve("c-0123abcd"), "c-0123abcd");
        assert_eq!(m.resolve("c-0123abcd-89abcdef"), "c-0123abcd");
        assert_eq!(m.resolve("c"), "d");
        assert_eq!(m.resolve("zz"), "zz");
    }
}
