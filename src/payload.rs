//! The C ABI's record payload, encoded straight from the caller's `MspAttr` / `MspStr` arrays:
//! each item is read where it is sized and where it is written, with nothing collected in between.

use std::os::raw::c_char;

use crate::ffi::{MspAttr, MspPayload, MspStr, MSP_ATTR_BOOL, MSP_ATTR_FLOAT, MSP_ATTR_INT, MSP_ATTR_JSON, MSP_ATTR_STR};
use crate::record::{self, Attr, Encode, Fixed, Kind, Sized, Value};

/// A record as the C caller described it (any pointer NULL means empty).
pub struct Payload<'a> {
    fixed: Fixed,
    p: Option<&'a MspPayload>,
}

impl<'a> Payload<'a> {
    /// A record of `kind` whose optional parts are in `p`.
    ///
    /// # Safety
    /// `p` is NULL or points to a valid `MspPayload` whose arrays and JSON are readable for their
    /// lengths (NULL parts are empty) for `'a` — the C ABI's contract for `msp_record`.
    #[inline(always)]
    pub unsafe fn new(kind: Kind, flags: u8, domain: u32, name: u32, t0: u64, t1: u64, p: *const MspPayload) -> Payload<'a> {
        // SAFETY: the caller's promise above.
        Payload { fixed: Fixed { kind, flags, t0, t1, domain, name }, p: unsafe { p.as_ref() } }
    }

    /// Attributes, request ids and JSON object. Read where they are used (twice per record, from
    /// L1) rather than kept: fewer values live across the thread-local lookup.
    #[inline(always)]
    fn parts(&self) -> (&'a [MspAttr], &'a [MspStr], &'a [u8]) {
        match self.p {
            Some(p) => (slice(p.attrs, p.n_attrs), slice(p.rids, p.n_rids), bytes(p.json, p.json_len)),
            None => (&[], &[], &[]),
        }
    }
}

/// The bytes at `p` (NULL: empty).
#[inline(always)]
pub fn bytes<'a>(p: *const c_char, len: usize) -> &'a [u8] {
    if p.is_null() {
        &[]
    } else {
        // SAFETY: the caller promises `len` readable bytes at `p`.
        unsafe { std::slice::from_raw_parts(p as *const u8, len) }
    }
}

/// The `n` elements at `p` (NULL: empty).
#[inline(always)]
fn slice<'a, T>(p: *const T, n: usize) -> &'a [T] {
    if p.is_null() {
        &[]
    } else {
        // SAFETY: the caller promises `n` elements at `p`.
        unsafe { std::slice::from_raw_parts(p, n) }
    }
}

/// A request id's bytes.
#[inline(always)]
fn rid<'a>(r: &MspStr) -> &'a [u8] {
    bytes(r.ptr, r.len)
}

/// The attribute, or `None` for an unknown kind (skipped).
#[inline(always)]
fn attr(a: &MspAttr) -> Option<Attr<'_>> {
    let value = match a.kind {
        MSP_ATTR_INT => Value::Int(a.i),
        MSP_ATTR_FLOAT => Value::Float(a.f),
        MSP_ATTR_STR => Value::Str(bytes(a.s, a.len)),
        MSP_ATTR_BOOL => Value::Bool(a.i != 0),
        MSP_ATTR_JSON => Value::Json(bytes(a.s, a.len)),
        _ => return None,
    };
    Some(Attr { key: a.key, value })
}

impl Encode for Payload<'_> {
    #[inline(always)]
    fn ids(&self) -> (Kind, u32, u32) {
        (self.fixed.kind, self.fixed.domain, self.fixed.name)
    }

    #[inline(always)]
    fn encoded_size(&self) -> Option<Sized> {
        let (attrs, rids, json) = self.parts();
        record::size_of_parts(rids.iter().map(rid), attrs.iter().filter_map(attr), json)
    }

    #[inline(always)]
    unsafe fn encode_into(&self, dst: *mut u8, size: Sized, tid: u32) {
        let (attrs, rids, json) = self.parts();
        record::encode_parts(dst, size, &self.fixed, tid, rids.iter().map(rid), attrs.iter().filter_map(attr), json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::MSP_ATTR_INT;
    use crate::record::{decode, Spec};

    /// Encode `e` into a fresh buffer and decode it back.
    fn roundtrip<E: Encode>(e: &E) -> Vec<u8> {
        let size = e.encoded_size().expect("encodable");
        let mut buf = vec![0u64; size.bytes / 8 + 1];
        let p = buf.as_mut_ptr() as *mut u8;
        // SAFETY: the buffer holds size.bytes + 8 bytes, 8-byte aligned.
        unsafe { e.encode_into(p, size, 9) };
        let bytes = unsafe { std::slice::from_raw_parts(p, size.bytes) }.to_vec();
        assert_eq!(decode(&bytes).unwrap().1, size.bytes);
        bytes
    }

    fn cstr(s: &[u8]) -> *const c_char {
        s.as_ptr() as *const c_char
    }

    #[test]
    fn same_bytes_as_spec() {
        let (k1, k2, k3, k4, k5) = (7, 8, 9, 10, 11);
        let attrs = [
            MspAttr { key: k1, kind: MSP_ATTR_INT, i: -5, f: 0.0, s: std::ptr::null(), len: 0 },
            MspAttr { key: k2, kind: MSP_ATTR_FLOAT, i: 0, f: 0.25, s: std::ptr::null(), len: 0 },
            MspAttr { key: k3, kind: MSP_ATTR_STR, i: 0, f: 0.0, s: cstr(b"hello"), len: 5 },
            MspAttr { key: 99, kind: 77, i: 1, f: 1.0, s: std::ptr::null(), len: 0 }, // unknown: skipped
            MspAttr { key: k4, kind: MSP_ATTR_BOOL, i: 3, f: 0.0, s: std::ptr::null(), len: 0 },
            MspAttr { key: k5, kind: MSP_ATTR_JSON, i: 0, f: 0.0, s: cstr(b"[1,2]"), len: 5 },
        ];
        let rids = [MspStr { ptr: cstr(b"req-1"), len: 5 }, MspStr { ptr: std::ptr::null(), len: 3 }];
        let json = br#"{"a":1}"#;
        let p = MspPayload { attrs: attrs.as_ptr(), n_attrs: attrs.len(), rids: rids.as_ptr(), n_rids: 2, json: cstr(json), json_len: json.len() };
        let from_c = roundtrip(&unsafe { Payload::new(Kind::Span, 0, 1, 2, 100, 250, &p) });

        let want_attrs = [
            Attr { key: k1, value: Value::Int(-5) },
            Attr { key: k2, value: Value::Float(0.25) },
            Attr { key: k3, value: Value::Str(b"hello") },
            Attr { key: k4, value: Value::Bool(true) },
            Attr { key: k5, value: Value::Json(b"[1,2]") },
        ];
        let want_rids: [&[u8]; 2] = [b"req-1", b""]; // a NULL id is an empty one
        let spec =
            Spec { kind: Kind::Span, flags: 0, t0: 100, t1: 250, domain: 1, name: 2, attrs: want_attrs.iter().copied(), rids: want_rids.iter().copied(), json };
        assert_eq!(from_c, roundtrip(&spec));
    }

    #[test]
    fn null_parts_are_empty() {
        let bare = roundtrip(&unsafe { Payload::new(Kind::Event, 0, 3, 4, 5, 0, std::ptr::null()) });
        let p = MspPayload { attrs: std::ptr::null(), n_attrs: 4, rids: std::ptr::null(), n_rids: 2, json: std::ptr::null(), json_len: 9 };
        assert_eq!(roundtrip(&unsafe { Payload::new(Kind::Event, 0, 3, 4, 5, 0, &p) }), bare);
        let (v, _) = decode(&bare).unwrap();
        assert_eq!((v.attrs().count(), v.rids().count(), v.json()), (0, 0, None));
    }

    #[test]
    fn too_many_attributes_cannot_be_encoded() {
        let a = MspAttr { key: 1, kind: MSP_ATTR_INT, i: 0, f: 0.0, s: std::ptr::null(), len: 0 };
        let attrs = vec![a; u16::MAX as usize + 1];
        let p = MspPayload { attrs: attrs.as_ptr(), n_attrs: attrs.len(), rids: std::ptr::null(), n_rids: 0, json: std::ptr::null(), json_len: 0 };
        assert!(unsafe { Payload::new(Kind::Span, 0, 1, 1, 0, 0, &p) }.encoded_size().is_none());
    }
}
