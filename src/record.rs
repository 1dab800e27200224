//! The record wire format — the one place that encodes and decodes a ring record.
//!
//! Layout (little-endian, 8-byte aligned; see docs/FORMAT.md):
//! ```text
//! 0   u64 header   size:u32 | kind:u8 | flags:u8 | check:u16   (stored last, with Release)
//! 8   u64 t0       start / timestamp (CLOCK_MONOTONIC ns)
//! 16  u64 t1       span end | metric value (f64 bits) | 0
//! 24  u32 domain   interned id
//! 28  u32 name     interned id
//! 32  u32 tid
//! 36  u16 n_attr
//! 38  u16 n_rid
//! 40  rids   n_rid  × { u32 len, bytes }
//!     attrs  n_attr × { u32 key, u8 type, value }  INT/FLOAT: 8 bytes, BOOL: 1, STR/JSON: u32 len + bytes
//!     json   if flags & HAS_JSON: { u32 len, bytes }   (an attributes object, stored verbatim)
//!     zero padding to a multiple of 8
//! ```
//! A zero header means "nothing committed here yet"; the writer stores the header only after the
//! body, so a reader (or a post-mortem of a killed process) never sees a half-written record as
//! committed. `check` is a 16-bit hash of the committed bytes, which detects corruption.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of the fixed part.
pub const FIXED: usize = 40;
/// Records are padded to this alignment.
pub const ALIGN: usize = 8;

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A span: `t0` start, `t1` end.
    Span = 1,
    /// An instant event at `t0`.
    Event = 2,
    /// A metric sample at `t0`; `t1` holds the f64 value; flag [`flags::DELTA`] for increments.
    Metric = 3,
    /// A link between two request ids: rid[0] → rid[1].
    Link = 4,
}

impl Kind {
    /// Decode a kind byte.
    pub fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Span,
            2 => Kind::Event,
            3 => Kind::Metric,
            4 => Kind::Link,
            _ => return None,
        })
    }
}

/// Record flag bits.
pub mod flags {
    /// A verbatim JSON attributes object follows the typed attributes.
    pub const HAS_JSON: u8 = 1;
    /// A metric record is an increment (`name+`), not a gauge (`name=`).
    pub const DELTA: u8 = 2;
    /// All defined bits.
    pub const ALL: u8 = HAS_JSON | DELTA;
}

/// Typed attribute value type tags.
pub mod attr_type {
    /// i64.
    pub const INT: u8 = 1;
    /// f64.
    pub const FLOAT: u8 = 2;
    /// UTF-8 string.
    pub const STR: u8 = 3;
    /// bool (one byte).
    pub const BOOL: u8 = 4;
    /// Any JSON value, as text.
    pub const JSON: u8 = 5;
}

/// One typed attribute value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// String bytes (UTF-8 expected, not enforced on the hot path).
    Str(&'a [u8]),
    /// Boolean.
    Bool(bool),
    /// JSON text of any value.
    Json(&'a [u8]),
}

impl Value<'_> {
    /// Encoded bytes of an attribute with this value (key and type tag included).
    #[inline(always)]
    pub(crate) fn encoded_len(&self) -> usize {
        5 + match self {
            Value::Int(_) | Value::Float(_) => 8,
            Value::Bool(_) => 1,
            Value::Str(s) | Value::Json(s) => 4 + s.len(),
        }
    }
}

/// An attribute: interned key id and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attr<'a> {
    /// Interned key (may carry the `name=` / `name+` / `scope#…` conventions).
    pub key: u32,
    /// The value.
    pub value: Value<'a>,
}

/// Everything needed to encode one record. Attributes and rids are given as cheap,
/// clonable iterators so the encoder can size and write without allocating.
#[derive(Clone)]
pub struct Spec<'a, A, R> {
    /// Kind.
    pub kind: Kind,
    /// Flag bits ([`flags`]); `HAS_JSON` is set automatically when `json` is non-empty.
    pub flags: u8,
    /// Start or timestamp.
    pub t0: u64,
    /// End, metric bits, or 0.
    pub t1: u64,
    /// Domain id.
    pub domain: u32,
    /// Name id.
    pub name: u32,
    /// Typed attributes.
    pub attrs: A,
    /// Request ids.
    pub rids: R,
    /// Verbatim JSON attributes object (may be empty).
    pub json: &'a [u8],
}

/// A record that can be sized, then written into ring space and committed. Implemented by
/// [`Spec`] (Rust callers) and by the C ABI's payload (`crate::payload`), which encodes the
/// caller's structures directly, without converting them first.
pub trait Encode {
    /// Kind, domain id and name id (for the domain filter and the mstx mirror).
    fn ids(&self) -> (Kind, u32, u32);
    /// Encoded size including padding, or `None` if it cannot be encoded (counts over u16).
    fn encoded_size(&self) -> Option<Sized>;
    /// Write the record into `dst` (sized by [`encoded_size`](Self::encoded_size); contents
    /// need not be zero) and commit it by storing the header last with Release ordering.
    ///
    /// # Safety
    /// `dst` must be valid for `size.bytes` bytes of writes, 8-byte aligned, and not written by
    /// anyone else concurrently. `tid` is the writer's OS thread id.
    unsafe fn encode_into(&self, dst: *mut u8, size: Sized, tid: u32);
}

impl<'a, A, R> Encode for Spec<'a, A, R>
where
    A: Iterator<Item = Attr<'a>> + Clone,
    R: Iterator<Item = &'a [u8]> + Clone,
{
    #[inline(always)]
    fn ids(&self) -> (Kind, u32, u32) {
        (self.kind, self.domain, self.name)
    }

    #[inline(always)]
    fn encoded_size(&self) -> Option<Sized> {
        size_of_parts(self.rids.clone(), self.attrs.clone(), self.json)
    }

    #[inline(always)]
    unsafe fn encode_into(&self, dst: *mut u8, size: Sized, tid: u32) {
        let fixed = Fixed { kind: self.kind, flags: self.flags, t0: self.t0, t1: self.t1, domain: self.domain, name: self.name };
        encode_parts(dst, size, &fixed, tid, self.rids.clone(), self.attrs.clone(), self.json);
    }
}

/// The fixed fields of a record (besides its thread id and counts).
pub(crate) struct Fixed {
    pub(crate) kind: Kind,
    pub(crate) flags: u8,
    pub(crate) t0: u64,
    pub(crate) t1: u64,
    pub(crate) domain: u32,
    pub(crate) name: u32,
}

/// The encoded size of a record with these parts.
#[inline(always)]
pub(crate) fn size_of_parts<'a>(rids: impl Iterator<Item = &'a [u8]>, attrs: impl Iterator<Item = Attr<'a>>, json: &[u8]) -> Option<Sized> {
    let mut n = FIXED;
    let (mut na, mut nr) = (0usize, 0usize);
    for r in rids {
        n += 4 + r.len();
        nr += 1;
    }
    for a in attrs {
        n += a.value.encoded_len();
        na += 1;
    }
    if !json.is_empty() {
        n += 4 + json.len();
    }
    sized(n, na, nr)
}

/// Write and commit a record with these parts (see [`Encode::encode_into`]).
///
/// # Safety
/// As [`Encode::encode_into`]; `size` from [`size_of_parts`] over the same parts.
#[inline(always)]
pub(crate) unsafe fn encode_parts<'a>(
    dst: *mut u8,
    size: Sized,
    f: &Fixed,
    tid: u32,
    rids: impl Iterator<Item = &'a [u8]>,
    attrs: impl Iterator<Item = Attr<'a>>,
    json: &[u8],
) {
    let mut w = Cursor::begin(dst, size, f.t0, f.t1, f.domain, f.name, tid);
    for r in rids {
        w.bytes(r);
    }
    for a in attrs {
        w.attr(a);
    }
    let fl = w.json(f.flags, json);
    w.commit(dst, size, f.kind, fl);
}

/// The [`Sized`] of a record of `n` unpadded bytes, or `None` if it cannot be encoded.
#[inline(always)]
fn sized(n: usize, n_attr: usize, n_rid: usize) -> Option<Sized> {
    if n_attr > u16::MAX as usize || n_rid > u16::MAX as usize || n > u32::MAX as usize / 2 {
        return None;
    }
    Some(Sized { bytes: (n + ALIGN - 1) & !(ALIGN - 1), n_attr: n_attr as u16, n_rid: n_rid as u16 })
}

/// The encoded size of a record and its counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sized {
    /// Bytes, including padding.
    pub bytes: usize,
    /// Typed attributes.
    pub n_attr: u16,
    /// Request ids.
    pub n_rid: u16,
}

/// The encoder's write position inside one record.
struct Cursor {
    p: *mut u8,
}

impl Cursor {
    /// Zero the record's last word (the body overwrites its front, the padding stays zero) and
    /// write the fixed part after the header.
    ///
    /// # Safety: as [`Encode::encode_into`].
    #[inline(always)]
    unsafe fn begin(dst: *mut u8, size: Sized, t0: u64, t1: u64, domain: u32, name: u32, tid: u32) -> Cursor {
        std::ptr::write(dst.add(size.bytes - 8) as *mut u64, 0);
        let f = dst as *mut u64;
        std::ptr::write(f.add(1), t0.to_le());
        std::ptr::write(f.add(2), t1.to_le());
        std::ptr::write(f.add(3), (domain as u64 | (name as u64) << 32).to_le());
        std::ptr::write(f.add(4), (tid as u64 | (size.n_attr as u64) << 32 | (size.n_rid as u64) << 48).to_le());
        Cursor { p: dst.add(FIXED) }
    }

    /// # Safety: the caller sized the destination for everything put.
    #[inline(always)]
    unsafe fn put(&mut self, b: &[u8]) {
        std::ptr::copy_nonoverlapping(b.as_ptr(), self.p, b.len());
        self.p = self.p.add(b.len());
    }

    /// A length-prefixed byte string (a request id, the JSON object).
    ///
    /// # Safety: as [`put`](Self::put).
    #[inline(always)]
    unsafe fn bytes(&mut self, b: &[u8]) {
        self.put(&(b.len() as u32).to_le_bytes());
        self.put(b);
    }

    /// One typed attribute.
    ///
    /// # Safety: as [`put`](Self::put).
    #[inline(always)]
    unsafe fn attr(&mut self, a: Attr<'_>) {
        self.put(&a.key.to_le_bytes());
        match a.value {
            Value::Int(i) => {
                self.put(&[attr_type::INT]);
                self.put(&i.to_le_bytes());
            }
            Value::Float(f) => {
                self.put(&[attr_type::FLOAT]);
                self.put(&f.to_le_bytes());
            }
            Value::Bool(b) => self.put(&[attr_type::BOOL, b as u8]),
            Value::Str(s) => {
                self.put(&[attr_type::STR]);
                self.bytes(s);
            }
            Value::Json(s) => {
                self.put(&[attr_type::JSON]);
                self.bytes(s);
            }
        }
    }

    /// The verbatim JSON object, if any; returns the record's flags with `HAS_JSON` set to match.
    ///
    /// # Safety: as [`put`](Self::put).
    #[inline(always)]
    unsafe fn json(&mut self, flags: u8, json: &[u8]) -> u8 {
        let fl = flags & flags::ALL & !flags::HAS_JSON;
        if json.is_empty() {
            return fl;
        }
        self.bytes(json);
        fl | flags::HAS_JSON
    }

    /// Store the header of the record at `dst`, last and with Release ordering: it is now
    /// committed.
    ///
    /// # Safety: as [`Encode::encode_into`], with the body fully written.
    #[inline(always)]
    unsafe fn commit(self, dst: *mut u8, size: Sized, kind: Kind, fl: u8) {
        debug_assert!(self.p <= dst.add(size.bytes));
        let body = std::slice::from_raw_parts(dst.add(8), size.bytes - 8);
        let head = header(size.bytes as u32, kind as u8, fl, body);
        // SAFETY: dst is 8-byte aligned and valid; AtomicU64 has the layout of u64.
        (*(dst as *const AtomicU64)).store(head, Ordering::Release);
    }
}

/// Compose a header word for a record whose bytes after the header are `body`.
fn header(size: u32, kind: u8, fl: u8, body: &[u8]) -> u64 {
    let check = check16(size, kind, fl, body);
    size as u64 | (kind as u64) << 32 | (fl as u64) << 40 | (check as u64) << 48
}

/// 16-bit check over the header fields and the body (length a multiple of 8). The multiplies
/// are independent of the accumulator, so the dependency chain is one rotate and one add per word.
/// Public so that the fuzz targets can repair it and reach the body validation.
pub fn check16(size: u32, kind: u8, fl: u8, body: &[u8]) -> u16 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = size as u64 | (kind as u64) << 32 | (fl as u64) << 40;
    // A plain pointer walk: records are short (5–10 words), where the unrolled loop an iterator
    // compiles to spends more on its set-up than on the words.
    let words = body.len() / 8;
    let p = body.as_ptr();
    let mut i = 0;
    while i < words {
        // SAFETY: i < words, so the 8 bytes at p + 8i lie inside `body`.
        let w = unsafe { std::ptr::read_unaligned(p.add(i * 8) as *const u64) };
        h = h.rotate_left(23).wrapping_add(u64::from_le(w).wrapping_mul(K));
        i += 1;
    }
    // fmix64 (MurmurHash3) so every input bit affects the folded 16 bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16 | 1 // never 0, so a committed header is never all-zero
}

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The header word is zero: nothing committed at this position.
    Empty,
    /// The header claims more bytes than are available.
    Truncated,
    /// Size, kind, flags, counts or check are invalid.
    Corrupt,
}

/// A decoded record borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// Kind.
    pub kind: Kind,
    /// Flags.
    pub flags: u8,
    /// Start / timestamp (monotonic ns).
    pub t0: u64,
    /// End / metric bits.
    pub t1: u64,
    /// Domain id.
    pub domain: u32,
    /// Name id.
    pub name: u32,
    /// Thread id.
    pub tid: u32,
    n_attr: u16,
    n_rid: u16,
    var: &'a [u8],
}

/// Decode one record at the start of `buf`. Returns the view and the record's size.
pub fn decode(buf: &[u8]) -> Result<(View<'_>, usize), DecodeError> {
    if buf.len() < 8 {
        return Err(if buf.iter().all(|&b| b == 0) { DecodeError::Empty } else { DecodeError::Truncated });
    }
    let head = u64::from_le_bytes(buf[..8].try_into().unwrap());
    if head == 0 {
        return Err(DecodeError::Empty);
    }
    let size = (head & 0xffff_ffff) as usize;
    let kind = ((head >> 32) & 0xff) as u8;
    let fl = ((head >> 40) & 0xff) as u8;
    let check = (head >> 48) as u16;
    if size < FIXED || size % ALIGN != 0 {
        return Err(DecodeError::Corrupt);
    }
    if size > buf.len() {
        return Err(DecodeError::Truncated);
    }
    let kind = Kind::from_u8(kind).ok_or(DecodeError::Corrupt)?;
    if fl & !flags::ALL != 0 || check16(size as u32, kind as u8, fl, &buf[8..size]) != check {
        return Err(DecodeError::Corrupt);
    }
    let u32at = |o: usize| u32::from_le_bytes(buf[o..o + 4].try_into().unwrap());
    let u64at = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap());
    let v = View {
        kind,
        flags: fl,
        t0: u64at(8),
        t1: u64at(16),
        domain: u32at(24),
        name: u32at(28),
        tid: u32at(32),
        n_attr: u16::from_le_bytes([buf[36], buf[37]]),
        n_rid: u16::from_le_bytes([buf[38], buf[39]]),
        var: &buf[FIXED..size],
    };
    v.validate().ok_or(DecodeError::Corrupt)?;
    Ok((v, size))
}

impl<'a> View<'a> {
    fn validate(&self) -> Option<()> {
        let mut r = Reader { b: self.var, p: 0 };
        for _ in 0..self.n_rid {
            r.bytes()?;
        }
        for _ in 0..self.n_attr {
            r.attr()?;
        }
        if self.flags & flags::HAS_JSON != 0 {
            r.bytes()?;
        }
        // Only zero padding may follow.
        self.var[r.p..].iter().all(|&b| b == 0).then_some(())
    }

    /// The request ids, in order.
    pub fn rids(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader { b: self.var, p: 0 };
        (0..self.n_rid).map(move |_| r.bytes().unwrap_or_default())
    }

    /// The typed attributes, in order.
    pub fn attrs(&self) -> impl Iterator<Item = Attr<'a>> + 'a {
        let mut r = Reader { b: self.var, p: 0 };
        for _ in 0..self.n_rid {
            r.bytes();
        }
        (0..self.n_attr).filter_map(move |_| r.attr())
    }

    /// The verbatim JSON attributes object, if any.
    pub fn json(&self) -> Option<&'a [u8]> {
        if self.flags & flags::HAS_JSON == 0 {
            return None;
        }
        let mut r = Reader { b: self.var, p: 0 };
        for _ in 0..self.n_rid {
            r.bytes();
        }
        for _ in 0..self.n_attr {
            r.attr();
        }
        r.bytes()
    }

    /// For a metric record, its value.
    pub fn metric_value(&self) -> f64 {
        f64::from_bits(self.t1)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn attr(&mut self) -> Option<Attr<'a>> {
        let key = self.u32()?;
        let t = self.take(1)?[0];
        let value = match t {
            attr_type::INT => Value::Int(i64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            attr_type::FLOAT => Value::Float(f64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            attr_type::BOOL => Value::Bool(self.take(1)?[0] != 0),
            attr_type::STR => Value::Str(self.bytes()?),
            attr_type::JSON => Value::Json(self.bytes()?),
            _ => return None,
        };
        Some(Attr { key, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check as first written (iterator form): the on-disk value must never change.
    fn check16_reference(size: u32, kind: u8, fl: u8, body: &[u8]) -> u16 {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = size as u64 | (kind as u64) << 32 | (fl as u64) << 40;
        for w in body.chunks_exact(8) {
            h = h.rotate_left(23).wrapping_add(u64::from_le_bytes(w.try_into().unwrap()).wrapping_mul(K));
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16 | 1
    }

    #[test]
    fn check16_unchanged() {
        let body: Vec<u8> = (0..8 * 40).map(|i| (i * 37 + 11) as u8).collect();
        for words in 0..40 {
            for (size, kind, fl) in [(48u32, 1u8, 0u8), (4096, 3, 2), (u32::MAX / 2, 4, 1)] {
                let b = &body[..words * 8];
                assert_eq!(check16(size, kind, fl, b), check16_reference(size, kind, fl, b), "{words} words");
            }
        }
    }

    #[test]
    fn roundtrip() {
        let attrs = [
            Attr { key: 7, value: Value::Int(-5) },
            Attr { key: 8, value: Value::Float(0.25) },
            Attr { key: 9, value: Value::Str(b"hello") },
            Attr { key: 10, value: Value::Bool(true) },
            Attr { key: 11, value: Value::Json(b"[1,2]") },
        ];
        let rids: [&[u8]; 2] = [b"req-1", b"req-22"];
        let spec = Spec {
            kind: Kind::Span,
            flags: 0,
            t0: 100,
            t1: 250,
            domain: 1,
            name: 2,
            attrs: attrs.iter().copied(),
            rids: rids.iter().copied(),
            json: br#"{"a":1}"#,
        };
        let sized = spec.encoded_size().unwrap();
        let size = sized.bytes;
        let mut buf = vec![0u64; size / 8 + 1];
        let p = buf.as_mut_ptr() as *mut u8;
        unsafe { spec.encode_into(p, sized, 77) };
        let bytes = unsafe { std::slice::from_raw_parts(p, size + 8) };
        let (v, n) = decode(bytes).unwrap();
        assert_eq!(n, size);
        assert_eq!((v.kind, v.t0, v.t1, v.domain, v.name, v.tid), (Kind::Span, 100, 250, 1, 2, 77));
        assert_eq!(v.rids().collect::<Vec<_>>(), rids.to_vec());
        assert_eq!(v.attrs().collect::<Vec<_>>(), attrs.to_vec());
        assert_eq!(v.json(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(decode(&bytes[size..]).unwrap_err(), DecodeError::Empty);
        // Any single flipped bit is detected.
        let mut copy = bytes[..size].to_vec();
        for i in 8..size * 8 {
            copy[i / 8] ^= 1 << (i % 8);
            assert!(decode(&copy).is_err(), "bit {i}");
            copy[i / 8] ^= 1 << (i % 8);
        }
        assert_eq!(decode(&bytes[..size - 8]).unwrap_err(), DecodeError::Truncated);
    }
}
