//! Fast decoding of a record's attributes: the JSON object is read in one pass, the `rid` value
//! straight into [`Rids`] (no JSON tree for the often large list of rid dicts), every other key
//! into a small vector (records have few keys, so a linear lookup beats hashing).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as J;

use super::rid::{RidEntry, Rids};
use crate::reader::ProcessMeta;
use crate::record::{Value, View};

/// The attributes of one record, `rid` excluded. Keys borrow the record's bytes when they can.
#[derive(Clone, Debug, Default)]
pub struct Attrs<'a> {
    /// Keys and values in record order.
    pub items: Vec<(Cow<'a, str>, J)>,
    /// The `rid` attribute, parsed.
    pub rid: Option<Rids>,
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'a> Attrs<'a> {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&J> {
        self.items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Decode the typed attributes and the JSON object of a record.
    pub fn decode(m: &'a ProcessMeta, v: &View<'a>) -> Attrs<'a> {
        Attrs::decode_cached(m, v, None)
    }

    /// As [`decode`](Self::decode); a large JSON object byte-equal to the previous one in `cache`
    /// (a batch's `modelExec` repeats its schedule record's list) is copied instead of parsed.
    pub fn decode_cached(m: &'a ProcessMeta, v: &View<'a>, cache: Option<&mut AttrCache>) -> Attrs<'a> {
        let mut a = match (v.json(), cache) {
            (Some(j), Some(c)) if j.len() >= AttrCache::MIN => {
                if c.json != j {
                    let fresh = Attrs::parse_json(j);
                    c.json.clear();
                    c.json.extend_from_slice(j);
                    c.items = fresh.items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                    c.rid = fresh.rid.clone();
                    fresh
                } else {
                    Attrs { items: c.items.iter().map(|(k, v)| (Cow::Owned(k.clone()), v.clone())).collect(), rid: c.rid.clone() }
                }
            }
            (j, _) => Attrs::parse_json(j.unwrap_or_default()),
        };
        for t in v.attrs() {
            let key = m.string(t.key);
            let val = match t.value {
                Value::Int(i) => J::from(i),
                Value::Float(f) => J::from(f),
                Value::Bool(b) => J::from(b),
                Value::Str(s) => J::String(super::rid::lossy_string(s)),
                Value::Json(s) => serde_json::from_slice(s).unwrap_or_else(|_| J::String(String::from_utf8_lossy(s).into_owned())),
            };
            if key == "rid" {
                a.rid = Some(Rids::from_value(&val));
            } else {
                a.items.push((Cow::Borrowed(key), val));
            }
        }
        a
    }

    /// Decode a record's JSON object (fast path, else serde; a non-object or invalid JSON becomes
    /// `_json` / `_json_invalid`).
    fn parse_json(j: &'a [u8]) -> Attrs<'a> {
        match j {
            j if !j.is_empty() => super::fast_attrs::parse(j).unwrap_or_else(|| {
                serde_json::from_slice::<Attrs>(j).unwrap_or_else(|_| match serde_json::from_slice::<J>(j) {
                    Ok(other) => Attrs { items: vec![("_json".into(), other)], rid: None },
                    Err(_) => Attrs { items: vec![("_json_invalid".into(), J::String(String::from_utf8_lossy(j).into_owned()))], rid: None },
                })
            }),
            _ => Attrs::default(),
        }
    }
}

/// The last large JSON object decoded by one reader, with its result.
#[derive(Default)]
pub struct AttrCache {
    json: Vec<u8>,
    items: Vec<(String, J)>,
    rid: Option<Rids>,
}

impl AttrCache {
    /// Objects shorter than this are parsed every time (comparing would not pay).
    pub const MIN: usize = 256;
}

impl<'de> Deserialize<'de> for Attrs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attrs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attributes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attrs<'de>, A::Error> {
                let mut a = Attrs { items: Vec::with_capacity(8), rid: None };
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    if k == "rid" {
                        a.rid = Some(map.next_value::<RidsDe>()?.0);
                    } else {
                        let v = map.next_value::<J>()?;
                        a.items.push((k, v));
                    }
                }
                Ok(a)
            }
        }
        d.deserialize_map(V)
    }
}

struct RidsDe(Rids);

fn entry(rid: String) -> RidEntry {
    RidEntry { rid, ..RidEntry::default() }
}

impl<'de> Deserialize<'de> for RidsDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RidsDe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rid: string, number, list of ids or list of dicts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RidsDe, E> {
                Ok(RidsDe(Rids { entries: std::sync::Arc::new(vec![entry(s.to_string())]), ..Rids::default() }))
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> Result<RidsDe, E> {
                self.visit_str(&x.to_string())
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> Result<RidsDe, E> {
                self.visit_str(&x.to_string())
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<RidsDe, E> {
                self.visit_str(&J::from(x).to_string())
            }
            fn visit_unit<E: de::Error>(self) -> Result<RidsDe, E> {
                Ok(RidsDe(Rids::default()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RidsDe, E> {
                Ok(RidsDe(Rids::default()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RidsDe, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RidsDe(Rids::default()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RidsDe, A::Error> {
                let mut r = Rids { list: true, entries: Default::default(), dicts: false };
                let entries = std::sync::Arc::make_mut(&mut r.entries);
                entries.reserve(seq.size_hint().unwrap_or(8));
                while let Some(e) = seq.next_element::<Elem>()? {
                    match e {
                        Elem::Id(s) => entries.push(entry(s)),
                        Elem::Dict(Some(d)) => {
                            r.dicts = true;
                            entries.push(d);
                        }
                        Elem::Dict(None) => r.dicts = true,
                        Elem::Skip => {}
                    }
                }
                Ok(RidsDe(r))
            }
        }
        d.deserialize_any(V)
    }
}

/// A rid value inside a dict: a string or a number (as text), else nothing.
struct RidScalar(Option<String>);

impl<'de> Deserialize<'de> for RidScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Elem::deserialize(d)? {
            Elem::Id(s) => Ok(RidScalar(Some(s))),
            _ => Ok(RidScalar(None)),
        }
    }
}

enum Elem {
    Id(String),
    Dict(Option<RidEntry>),
    Skip,
}

fn f64_of(v: &Num) -> Option<f64> {
    v.0
}

/// A number (or numeric string) as f64; anything else as None.
struct Num(Option<f64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> Result<Num, E> {
                Ok(Num(Some(x as f64)))
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> Result<Num, E> {
                Ok(Num(Some(x as f64)))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Num, E> {
                Ok(Num(Some(x)))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Num, E> {
                Ok(Num(Some(b as u8 as f64)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Num, E> {
                Ok(Num(s.trim().parse().ok()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Num, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Num(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Num, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Num(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Elem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Elem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a request id or a rid dict")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Elem, E> {
                Ok(Elem::Id(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Elem, E> {
                Ok(Elem::Id(s))
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> Result<Elem, E> {
                Ok(Elem::Id(x.to_string()))
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> Result<Elem, E> {
                Ok(Elem::Id(x.to_string()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Elem, E> {
                Ok(Elem::Skip)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Elem, E> {
                Ok(Elem::Skip)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Elem, E> {
                Ok(Elem::Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Elem, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Elem::Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Elem, A::Error> {
                let mut e = RidEntry::default();
                let mut has_rid = false;
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    match k.as_ref() {
                        "rid" => {
                            if let Some(r) = map.next_value::<RidScalar>()?.0 {
                                e.rid = r;
                                has_rid = true;
                            }
                        }
                        "iter" => e.iter = f64_of(&map.next_value::<Num>()?).map(|f| f as i64),
                        "type" => e.typ = f64_of(&map.next_value::<Num>()?).map(|f| f as i64),
                        "num_scheduled_tokens" => e.scheduled = map.next_value::<Num>()?.0,
                        "num_prompt_tokens" => e.prompt = map.next_value::<Num>()?.0,
                        "num_computed_tokens" => e.computed = map.next_value::<Num>()?.0,
                        "num_spec_output_tokens" => e.spec_out = map.next_value::<Num>()?.0,
                        "num_spec_accepted_tokens" => e.spec_accepted = map.next_value::<Num>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Elem::Dict(has_rid.then_some(e)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_as_tree() {
        for v in [
            json!({"rid": [{"rid": "a", "iter": 0, "type": 0, "num_scheduled_tokens": 7, "x": [1]}, {"rid": 5, "iter": "2"}], "batch_type": "Prefill", "type": 2}),
            json!({"rid": "x", "QueueSize=": 3}),
            json!({"rid": ["x", 7], "k": {"a": 1}}),
            json!({"rid": null}),
        ] {
            let text = v.to_string();
            let a: Attrs = serde_json::from_str(&text).unwrap();
            assert_eq!(a.rid.unwrap(), Rids::from_value(&v["rid"]));
            assert_eq!(a.items.len(), v.as_object().unwrap().len() - 1);
        }
    }
}
