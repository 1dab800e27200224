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
    /// A record of `kind` whose optional parts are in `p` (NULL or valid for its lengths).
    #[inline(always)]
    pub fn new(kind: Kind, flags: u8, domain: u32, name: u32, t0: u64, t1: u64, p: *const MspPayload) -> Payload<'a> {
        // SAFETY: NULL or a valid payload, by the C ABI's contract.
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
pub fn slice<'a, T>(p: *const T, n: usize) -> &'a [T] {
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
