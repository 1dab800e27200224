//! The fast path of [`Attrs`] decoding: a byte scanner for the shapes the recorder's callers
//! write (a flat object of scalars, `rid` a scalar, a list of ids or a list of flat dicts). It
//! yields exactly what the serde path yields, or `None` on anything else (escaped strings, nested
//! values outside the rid dicts, odd numbers, invalid JSON), and the caller falls back to serde.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value as J;

use super::attrs::Attrs;
use super::rid::{RidEntry, Rids};

/// Decode a record's JSON object, or `None` to let the serde path decide.
pub fn parse(b: &[u8]) -> Option<Attrs<'_>> {
    let mut p = P { b, i: 0 };
    p.lit(b'{')?;
    let mut a = Attrs { items: Vec::with_capacity(8), rid: None };
    if !p.try_lit(b'}') {
        loop {
            p.ws();
            let k = p.string()?;
            p.lit(b':')?;
            p.ws();
            if k == "rid" {
                a.rid = Some(p.rids()?);
            } else {
                let v = match p.scalar()? {
                    Sc::Str(s) => J::String(s.to_string()),
                    Sc::Num(n) => n,
                    Sc::Bool(x) => J::Bool(x),
                    Sc::Null => J::Null,
                };
                a.items.push((Cow::Borrowed(k), v));
            }
            if p.try_lit(b',') {
                continue;
            }
            p.lit(b'}')?;
            break;
        }
    }
    p.ws();
    (p.i == b.len()).then_some(a)
}

enum Sc<'a> {
    Str(&'a str),
    Num(J),
    Bool(bool),
    Null,
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn try_lit(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn lit(&mut self, c: u8) -> Option<()> {
        self.try_lit(c).then_some(())
    }

    /// The bytes of a string without escapes or control characters (else `None`).
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let s = self.i + 1;
        let rest = &self.b[s..];
        let n = memchr::memchr2(b'"', b'\\', rest)?;
        // No early exit: the fold vectorises, and strings here are short.
        if rest[n] != b'"' || rest[..n].iter().fold(false, |c, &b| c | (b < 0x20)) {
            return None;
        }
        self.i = s + n + 1;
        Some(&rest[..n])
    }

    /// A string without escapes (else `None`).
    fn string(&mut self) -> Option<&'a str> {
        let r = self.raw_string()?;
        if r.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(r) })
        } else {
            std::str::from_utf8(r).ok()
        }
    }

    /// A number: plain non-negative integers here, anything else through serde_json.
    fn number(&mut self) -> Option<J> {
        let (b, s) = (self.b, self.i);
        let mut i = s;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - s;
        let more = b.get(i).is_some_and(|c| matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'));
        if n > 0 && n <= 19 && !more && (b[s] != b'0' || n == 1) {
            self.i = i;
            let mut v: u64 = 0;
            for &c in &b[s..i] {
                v = v * 10 + (c - b'0') as u64;
            }
            return Some(J::from(v));
        }
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+')) {
            i += 1;
        }
        self.i = i;
        serde_json::from_slice::<J>(&b[s..i]).ok().filter(J::is_number)
    }

    /// A scalar value (`None` for arrays, objects and anything invalid).
    fn scalar(&mut self) -> Option<Sc<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Sc::Str),
            b't' => self.word(b"true").map(|_| Sc::Bool(true)),
            b'f' => self.word(b"false").map(|_| Sc::Bool(false)),
            b'n' => self.word(b"null").map(|_| Sc::Null),
            b'-' | b'0'..=b'9' => self.number().map(Sc::Num),
            _ => None,
        }
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            Some(())
        } else {
            None
        }
    }

    /// Skip any value that holds no string escapes, validating it (`None` on anything else).
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > 64 {
            return None;
        }
        match self.peek()? {
            b'[' => {
                self.i += 1;
                if self.try_lit(b']') {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if !self.try_lit(b',') {
                        return self.lit(b']');
                    }
                }
            }
            b'{' => {
                self.i += 1;
                if self.try_lit(b'}') {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.lit(b':')?;
                    self.skip(depth + 1)?;
                    if !self.try_lit(b',') {
                        return self.lit(b'}');
                    }
                }
            }
            _ => self.scalar().map(|_| ()),
        }
    }

    /// An integer id as text (strings as they are); `Ok(None)` for other scalars, lists and dicts.
    fn id(&mut self) -> Option<Option<String>> {
        match self.peek()? {
            b'[' | b'{' => self.skip(0).map(|_| None),
            _ => Some(match self.scalar()? {
                Sc::Str(s) => Some(s.to_string()),
                Sc::Num(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                _ => None,
            }),
        }
    }

    /// A number as the rid dicts read it (numbers, numeric strings, booleans; else `None`).
    fn num(&mut self) -> Option<Option<f64>> {
        // Fast path: a plain non-negative integer (what `number` takes without serde), as f64.
        self.ws();
        let (b, s) = (self.b, self.i);
        if b.get(s).is_some_and(u8::is_ascii_digit) {
            let (mut i, mut v) = (s, 0u64);
            while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                v = v.wrapping_mul(10).wrapping_add((c - b'0') as u64);
                i += 1;
            }
            let n = i - s;
            let more = b.get(i).is_some_and(|c| matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'));
            if n <= 19 && !more && (b[s] != b'0' || n == 1) {
                self.i = i;
                return Some(Some(v as f64));
            }
        }
        match self.peek()? {
            b'[' | b'{' => self.skip(0).map(|_| None),
            _ => Some(match self.scalar()? {
                Sc::Num(n) => n.as_f64(),
                Sc::Str(s) => s.trim().parse().ok(),
                Sc::Bool(x) => Some(x as u8 as f64),
                Sc::Null => None,
            }),
        }
    }

    /// The `rid` value.
    fn rids(&mut self) -> Option<Rids> {
        match self.peek()? {
            b'[' => {}
            b'{' => return None,
            _ => {
                return Some(match self.scalar()? {
                    Sc::Str(s) => Rids { entries: Arc::new(vec![entry(s.to_string())]), ..Rids::default() },
                    Sc::Num(n) if n.is_i64() || n.is_u64() => Rids { entries: Arc::new(vec![entry(n.to_string())]), ..Rids::default() },
                    Sc::Num(_) => return None,
                    Sc::Bool(_) | Sc::Null => Rids::default(),
                })
            }
        }
        self.i += 1;
        let mut r = Rids { list: true, entries: Arc::default(), dicts: false };
        if self.try_lit(b']') {
            return Some(r);
        }
        let mut entries = Vec::with_capacity(16);
        loop {
            match self.peek()? {
                b'{' => {
                    r.dicts = true;
                    if let Some(e) = self.dict()? {
                        entries.push(e);
                    }
                }
                _ => {
                    if let Some(s) = self.id()? {
                        entries.push(entry(s));
                    }
                }
            }
            if !self.try_lit(b',') {
                self.lit(b']')?;
                r.entries = Arc::new(entries);
                return Some(r);
            }
        }
    }

    /// One rid dict (at `{`): the entry when it has a scalar `rid`.
    fn dict(&mut self) -> Option<Option<RidEntry>> {
        self.i += 1;
        let mut e = RidEntry::default();
        let mut has_rid = false;
        if self.try_lit(b'}') {
            return Some(None);
        }
        // The keys usually come in the contract's order: the expected one is compared first.
        const KEYS: [&[u8]; 8] = [
            b"\"rid\"",
            b"\"iter\"",
            b"\"type\"",
            b"\"num_scheduled_tokens\"",
            b"\"num_prompt_tokens\"",
            b"\"num_computed_tokens\"",
            b"\"num_spec_output_tokens\"",
            b"\"num_spec_accepted_tokens\"",
        ];
        let mut next = 0;
        loop {
            self.ws();
            let k = match KEYS.get(next) {
                Some(q) if self.b[self.i..].starts_with(q) => {
                    self.i += q.len();
                    next += 1;
                    &q[1..q.len() - 1]
                }
                _ => {
                    let k = self.raw_string()?;
                    next = KEYS.iter().position(|q| &q[1..q.len() - 1] == k).map_or(KEYS.len(), |p| p + 1);
                    k
                }
            };
            self.lit(b':')?;
            match k {
                b"rid" => {
                    if let Some(r) = self.id()? {
                        e.rid = r;
                        has_rid = true;
                    }
                }
                b"iter" => e.iter = self.num()?.map(|f| f as i64),
                b"type" => e.typ = self.num()?.map(|f| f as i64),
                b"num_scheduled_tokens" => e.scheduled = self.num()?,
                b"num_prompt_tokens" => e.prompt = self.num()?,
                b"num_computed_tokens" => e.computed = self.num()?,
                b"num_spec_output_tokens" => e.spec_out = self.num()?,
                b"num_spec_accepted_tokens" => e.spec_accepted = self.num()?,
                // Other keys must still be valid UTF-8 (as serde requires).
                _ => {
                    std::str::from_utf8(k).ok()?;
                    self.skip(0)?
                }
            }
            if !self.try_lit(b',') {
                self.lit(b'}')?;
                return Some(has_rid.then_some(e));
            }
        }
    }
}

fn entry(rid: String) -> RidEntry {
    RidEntry { rid, ..RidEntry::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path agrees with serde wherever it answers, and answers for the common shapes.
    #[test]
    fn same_as_serde() {
        let common = [
            r#"{"rid": [{"rid": "a", "iter": 0, "type": 0, "num_scheduled_tokens": 7, "x": [1, {"y": null}]}, {"rid": 5, "iter": "2"}], "batch_type": "Prefill", "type": 2}"#,
            r#"{"rid":"x","QueueSize=":3,"scope#QueueName":"WAITING","f":-1.5e3,"b":true,"n":null}"#,
            r#"{"rid": ["x", 7, 1.5, null, [1]], "k": 18446744073709551615}"#,
            r#"{"rid": null, "AllocatedBlocks=": -4, "UsagePercent=": 0.12}"#,
            r#"{"rid": [{"rid": {"a": 1}, "iter": 1}, {"iter": 2}, {"rid": "é", "type": true, "num_prompt_tokens": " 12 "}]}"#,
            r#" { } "#,
            r#"{"rid": 12, "z": 0, "big": 123456789012345678901, "u": 18446744073709551615}"#,
            r#"{"rid": [{"type": 1, "rid": "b", "num_prompt_tokens": 3, "iter": 4, "iter": 5, "num_computed_tokens": 12345678901234567890}, {"rid":"c","iter":0,"num_scheduled_tokens":1.5e2}]}"#,
        ];
        for text in common {
            let fast = parse(text.as_bytes()).unwrap_or_else(|| panic!("no fast path for {text}"));
            let slow: Attrs = serde_json::from_str(text).unwrap();
            assert_eq!(fast.rid, slow.rid, "{text}");
            assert_eq!(fast.items, slow.items, "{text}");
        }
        // Declined: escapes, nested values, invalid JSON, trailing bytes, huge ints.
        for text in [
            r#"{"a": "x\"y"}"#,
            r#"{"a": [1]}"#,
            r#"{"a": 1"#,
            r#"{"a": 1} x"#,
            r#"{"a": 01}"#,
            r#"{"rid": {"x": 1}}"#,
            r#"[1]"#,
            r#"{"a": 1.}"#,
            r#"{"a": -}"#,
        ] {
            assert!(parse(text.as_bytes()).is_none(), "{text}");
        }
    }
}
