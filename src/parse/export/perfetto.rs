//! `trace.perfetto-trace`: the same timeline as chrome_tracing.json in Perfetto's protobuf
//! format (`Trace { repeated TracePacket packet = 1 }` with TrackEvent packets), for captures
//! too large for JSON viewers (≈ half the bytes, no single-string limit). Written per part while
//! reading; track descriptors are written first at the end. Open it in ui.perfetto.dev or
//! `trace_processor`.

use std::io::Write;

/// A protobuf message being encoded.
#[derive(Default)]
pub struct Msg {
    /// Encoded bytes.
    pub buf: Vec<u8>,
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

impl Msg {
    /// Varint field.
    pub fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        varint(&mut self.buf, (field as u64) << 3);
        varint(&mut self.buf, v);
        self
    }
    /// Signed varint field (two's complement, as `int64`).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.uint(field, v as u64)
    }
    /// `double` field.
    pub fn double(&mut self, field: u32, v: f64) -> &mut Self {
        varint(&mut self.buf, (field as u64) << 3 | 1);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `fixed64` field.
    pub fn fixed64(&mut self, field: u32, v: u64) -> &mut Self {
        varint(&mut self.buf, (field as u64) << 3 | 1);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Bytes / string field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        varint(&mut self.buf, (field as u64) << 3 | 2);
        varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }
    /// Nested message field.
    pub fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.buf)
    }
}

/// TrackEvent types.
pub mod ty {
    /// Slice begin.
    pub const BEGIN: u64 = 1;
    /// Slice end.
    pub const END: u64 = 2;
    /// Instant.
    pub const INSTANT: u64 = 3;
    /// Counter.
    pub const COUNTER: u64 = 4;
}

/// Track uuid of a process.
pub fn process_uuid(pid: u64) -> u64 {
    (pid << 32) | 1 << 31
}

/// Track uuid of a thread (`tid` = the trace tid).
pub fn thread_uuid(pid: u64, tid: u32) -> u64 {
    (pid << 32) | tid as u64
}

/// Track uuid of a counter of a process.
pub fn counter_uuid(pid: u64, name: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(name.as_bytes());
    (pid << 32) | 1 << 30 | (h.finish() & 0x3fff_ffff)
}

/// Flow id of a request (engine ids `X-<8 hex>` folded onto `X`).
pub fn flow_id(rid: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let base = crate::parse::model::rid::strip_internal_suffix(rid).unwrap_or(rid);
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(base.as_bytes());
    h.finish() | 1
}

/// Write one packet (as field 1 of `Trace`).
pub fn packet(w: &mut impl Write, ts: Option<i64>, fill: impl FnOnce(&mut Msg)) -> std::io::Result<()> {
    let mut p = Msg::default();
    if let Some(ts) = ts {
        p.uint(8, ts.max(0) as u64);
    }
    fill(&mut p);
    p.uint(10, 1); // trusted_packet_sequence_id
    let mut head = Vec::with_capacity(12);
    varint(&mut head, 1 << 3 | 2);
    varint(&mut head, p.buf.len() as u64);
    w.write_all(&head)?;
    w.write_all(&p.buf)
}

/// A track event packet: `kind` on `track`, with name, category and debug annotations.
pub fn track_event(
    w: &mut impl Write,
    ts: i64,
    kind: u64,
    track: u64,
    name: Option<&str>,
    cat: Option<&str>,
    annotations: &[(&str, &str)],
    flows: &[u64],
    counter: Option<f64>,
) -> std::io::Result<()> {
    packet(w, Some(ts), |p| {
        let mut e = Msg::default();
        e.uint(9, kind).uint(11, track);
        if let Some(c) = cat {
            e.bytes(22, c.as_bytes());
        }
        if let Some(n) = name {
            e.bytes(23, n.as_bytes());
        }
        for (k, v) in annotations {
            let mut a = Msg::default();
            a.bytes(10, k.as_bytes()).bytes(6, v.as_bytes());
            e.msg(4, &a);
        }
        for f in flows {
            e.fixed64(47, *f);
        }
        if let Some(v) = counter {
            e.double(44, v);
        }
        p.msg(11, &e);
    })
}

/// A process track descriptor.
pub fn process_descriptor(w: &mut impl Write, pid: u64, name: &str, sort: i64) -> std::io::Result<()> {
    packet(w, None, |p| {
        let mut pr = Msg::default();
        pr.int(1, pid as i64).bytes(6, name.as_bytes());
        let mut d = Msg::default();
        d.uint(1, process_uuid(pid)).msg(3, &pr);
        d.int(12, sort); // sibling_order_rank
        p.msg(60, &d);
    })
}

/// A thread track descriptor.
pub fn thread_descriptor(w: &mut impl Write, pid: u64, tid: u32, name: &str) -> std::io::Result<()> {
    packet(w, None, |p| {
        let mut th = Msg::default();
        th.int(1, pid as i64).int(2, tid as i64).bytes(5, name.as_bytes());
        let mut d = Msg::default();
        d.uint(1, thread_uuid(pid, tid)).uint(5, process_uuid(pid)).msg(4, &th);
        p.msg(60, &d);
    })
}

/// A counter track descriptor.
pub fn counter_descriptor(w: &mut impl Write, pid: u64, name: &str) -> std::io::Result<()> {
    packet(w, None, |p| {
        let mut d = Msg::default();
        d.uint(1, counter_uuid(pid, name)).uint(5, process_uuid(pid)).bytes(2, name.as_bytes()).msg(8, &Msg::default());
        p.msg(60, &d);
    })
}

/// Write `<dir>/trace.perfetto-trace`: track descriptors (processes named and ordered as in the
/// JSON trace, their threads and counters), then every fragment. The fragments are removed.
pub fn write(m: &crate::parse::build::Model, dir: &std::path::Path, fragments: &[std::path::PathBuf], counters: &[Vec<String>]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, crate::parse::output::create_file(&dir.join("trace.perfetto-trace"))?);
    for (rank, &i) in super::chrome::process_order(m).iter().enumerate() {
        let pid = m.procs[i].trace_pid;
        process_descriptor(&mut w, pid, &format!("{} [{}]", super::chrome::process_name(m, i), super::chrome::label(m, i)), rank as i64)?;
        for t in &m.threads[i] {
            thread_descriptor(&mut w, pid, t.tid, &t.name)?;
        }
        for c in &counters[i] {
            counter_descriptor(&mut w, pid, c)?;
        }
    }
    for f in fragments {
        std::io::copy(&mut std::fs::File::open(f)?, &mut w)?;
        let _ = std::fs::remove_file(f);
    }
    w.flush()
}

/// Read back the packets of a trace: (field number, bytes) of each packet's top-level fields.
/// For tests and tools; fails on malformed input.
pub fn decode_packets(data: &[u8]) -> Option<Vec<Vec<(u32, Vec<u8>)>>> {
    fn rv(b: &[u8], p: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for s in 0..10 {
            let x = *b.get(*p)?;
            *p += 1;
            v |= ((x & 0x7f) as u64) << (7 * s);
            if x < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn fields(b: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
        let mut p = 0;
        let mut out = Vec::new();
        while p < b.len() {
            let key = rv(b, &mut p)?;
            let (f, wt) = ((key >> 3) as u32, key & 7);
            let v = match wt {
                0 => {
                    let x = rv(b, &mut p)?;
                    x.to_le_bytes().to_vec()
                }
                1 => {
                    let s = b.get(p..p + 8)?.to_vec();
                    p += 8;
                    s
                }
                2 => {
                    let n = rv(b, &mut p)? as usize;
                    let s = b.get(p..p.checked_add(n)?)?.to_vec();
                    p += n;
                    s
                }
                5 => {
                    let s = b.get(p..p + 4)?.to_vec();
                    p += 4;
                    s
                }
                _ => return None,
            };
            out.push((f, v));
        }
        Some(out)
    }
    fields(data)?.into_iter().map(|(f, v)| if f == 1 { fields(&v) } else { None }).collect()
}
