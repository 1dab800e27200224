//! Device records in the ring (docs/FORMAT.md "Device records"): MSPTI activities become spans in
//! the domains `Kernel`, `Api`, `Communication` and `Mstx`; drops become `Device`/`msptiDropped`
//! events; usage samples become `HostUsage` / `NpuUsage` gauges. Existing record kinds only.

use std::collections::HashMap;

use super::mspti::Activity;
use crate::core::Core;
use crate::record::{Attr, Kind, Spec, Value};

/// Interned ids of the device domains, names and attribute keys.
pub struct Keys {
    kernel: u32,
    api: u32,
    communication: u32,
    mstx: u32,
    device: u32,
    dropped: u32,
    device_id: u32,
    stream_id: u32,
    correlation_id: u32,
    ty: u32,
    data_type: u32,
    count: u32,
    comm_name: u32,
    alg_type: u32,
    pid: u32,
    tid: u32,
    marker_domain: u32,
}

impl Keys {
    /// Intern everything once.
    pub fn new(core: &Core) -> Keys {
        let i = |s: &str| core.intern(s.as_bytes());
        Keys {
            kernel: i("Kernel"),
            api: i("Api"),
            communication: i("Communication"),
            mstx: i("Mstx"),
            device: i("Device"),
            dropped: i("msptiDropped"),
            device_id: i("deviceId"),
            stream_id: i("streamId"),
            correlation_id: i("correlationId"),
            ty: i("type"),
            data_type: i("dataType"),
            count: i("count"),
            comm_name: i("commName"),
            alg_type: i("algType"),
            pid: i("pid"),
            tid: i("tid"),
            marker_domain: i("markerDomain"),
        }
    }
}

/// Write one record with an explicit thread id.
pub fn put(core: &Core, kind: Kind, domain: u32, name: u32, t: (u64, u64), attrs: &[Attr<'_>], tid: u32) -> bool {
    let spec = Spec { kind, flags: 0, t0: t.0, t1: t.1, domain, name, attrs: attrs.iter().copied(), rids: std::iter::empty::<&[u8]>(), json: &[] };
    core.record_device(&spec, tid)
}

/// Name of a `msptiCommunicationDataType` value (CANN_ABI §3.3).
pub fn data_type_name(v: u32) -> String {
    let n = match v {
        0 => "INT8",
        1 => "INT16",
        2 => "INT32",
        3 => "FP16",
        4 => "FP32",
        5 => "INT64",
        6 => "UINT64",
        7 => "UINT8",
        8 => "UINT16",
        9 => "UINT32",
        10 => "FP64",
        11 => "BFP16",
        12 => "INT128",
        14 => "HIF8",
        15 => "FP8E4M3",
        16 => "FP8E5M2",
        17 => "FP8E8M0",
        0xFFFF => "INVALID",
        other => return other.to_string(),
    };
    n.to_string()
}

const START: u32 = 2 | 16;
const END: u32 = 4 | 32;
const MAX_OPEN_MARKERS: usize = 1 << 16;

struct MarkerEnd {
    ts: u64,
    source: u32,
    object: (u32, u32),
    name: Option<String>,
    domain: Option<String>,
}

/// Turns MSPTI activities into ring records; pairs range markers by id.
pub struct Emitter {
    keys: Keys,
    starts: HashMap<u64, MarkerEnd>,
    ends: HashMap<u64, MarkerEnd>,
}

impl Emitter {
    /// A fresh emitter (interns its keys).
    pub fn new(core: &Core) -> Emitter {
        Emitter { keys: Keys::new(core), starts: HashMap::new(), ends: HashMap::new() }
    }

    /// Write one activity.
    pub fn emit(&mut self, core: &Core, a: Activity) {
        let k = &self.keys;
        let int = |key: u32, v: u64| Attr { key, value: Value::Int(v as i64) };
        match a {
            Activity::Kernel { t, ds, corr, ty, name } => {
                let attrs = [
                    int(k.device_id, ds.0 as u64),
                    int(k.stream_id, ds.1 as u64),
                    int(k.correlation_id, corr),
                    Attr { key: k.ty, value: Value::Str(ty.as_bytes()) },
                ];
                put(core, Kind::Span, k.kernel, core.intern(name.as_bytes()), t, &attrs, 0);
            }
            Activity::Api { t, pt, corr, name } => {
                let attrs = [int(k.correlation_id, corr), int(k.pid, pt.0 as u64)];
                put(core, Kind::Span, k.api, core.intern(name.as_bytes()), t, &attrs, pt.1);
            }
            Activity::Communication { t, ds, corr, data_type, count, alg, name, comm } => {
                let dt = data_type_name(data_type);
                let attrs = [
                    int(k.device_id, ds.0 as u64),
                    int(k.stream_id, ds.1 as u64),
                    int(k.correlation_id, corr),
                    Attr { key: k.data_type, value: Value::Str(dt.as_bytes()) },
                    int(k.count, count),
                    Attr { key: k.comm_name, value: Value::Str(comm.as_bytes()) },
                    Attr { key: k.alg_type, value: Value::Str(alg.as_bytes()) },
                ];
                put(core, Kind::Span, k.communication, core.intern(name.as_bytes()), t, &attrs, 0);
            }
            Activity::Marker { flag, source, ts, id, object, name, domain } => {
                let m = MarkerEnd { ts, source, object, name, domain };
                if flag & START != 0 {
                    match self.ends.remove(&id) {
                        Some(end) => self.marker(core, m, end.ts),
                        None => bounded_insert(&mut self.starts, id, m),
                    }
                } else if flag & END != 0 {
                    match self.starts.remove(&id) {
                        Some(start) => self.marker(core, start, ts),
                        None => bounded_insert(&mut self.ends, id, m),
                    }
                } else {
                    self.marker(core, m, ts);
                }
            }
            Activity::Dropped { ts, count } => {
                put(core, Kind::Event, k.device, k.dropped, (ts, 0), &[int(k.count, count)], 0);
            }
        }
    }

    fn marker(&self, core: &Core, m: MarkerEnd, end: u64) {
        let k = &self.keys;
        let mut attrs = Vec::with_capacity(3);
        let (a, b) = m.object;
        if m.source == 1 {
            attrs.push(Attr { key: k.device_id, value: Value::Int(a as i64) });
            attrs.push(Attr { key: k.stream_id, value: Value::Int(b as i64) });
        } else {
            attrs.push(Attr { key: k.pid, value: Value::Int(a as i64) });
            attrs.push(Attr { key: k.tid, value: Value::Int(b as i64) });
        }
        if let Some(d) = &m.domain {
            attrs.push(Attr { key: k.marker_domain, value: Value::Str(d.as_bytes()) });
        }
        let name = core.intern(m.name.as_deref().unwrap_or("").as_bytes());
        put(core, Kind::Span, k.mstx, name, (m.ts, end.max(m.ts)), &attrs, 0);
    }
}

fn bounded_insert(map: &mut HashMap<u64, MarkerEnd>, id: u64, m: MarkerEnd) {
    if map.len() >= MAX_OPEN_MARKERS {
        map.clear(); // unmatched halves (a start whose end never came) must not grow without bound
    }
    map.insert(id, m);
}

#[cfg(test)]
mod tests {
    #[test]
    fn data_type_names() {
        assert_eq!(super::data_type_name(3), "FP16");
        assert_eq!(super::data_type_name(11), "BFP16");
        assert_eq!(super::data_type_name(0xFFFF), "INVALID");
        assert_eq!(super::data_type_name(13), "13");
    }
}
