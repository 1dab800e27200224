//! `acl_task_time: 2` — MSPTI activity capture (CANN_ABI §3).
//!
//! Start: subscribe, register the buffer callbacks, install the timestamp callback (so device
//! times arrive on the ring's CLOCK_MONOTONIC), then enable KERNEL, API, COMMUNICATION and MARKER.
//! MSPTI calls [`on_request`] / [`on_complete`] on its own threads; the completion callback walks
//! the buffer with `msptiActivityGetNextRecord`, applies the name filters, copies every string,
//! and hands owned [`Activity`] values to a bounded queue that the control thread drains into the
//! ring. Callbacks never block on the control plane, never panic across FFI, never free memory
//! they did not allocate.

use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;

use super::cann::{self, Lib};
use super::sys;
use crate::clock::{monotonic_ns, realtime_ns};
use crate::log::{self, Level};

/// Bytes of one activity buffer handed to MSPTI.
pub const BUFFER_BYTES: usize = 1 << 20;
/// At most this many buffers are out at once (MSPTI drops and counts records beyond them).
const MAX_BUFFERS: usize = 64;
/// Records queued for the control thread beyond this are dropped and counted.
const MAX_QUEUED: usize = 1 << 21;
/// Records read from one buffer at most (as the reference).
const MAX_PER_BUFFER: usize = 1 << 20;

/// One device activity, strings copied, times on the ring clock (CLOCK_MONOTONIC ns).
#[derive(Clone, Debug, PartialEq)]
pub enum Activity {
    /// A kernel execution on a stream.
    Kernel {
        /// Start, end.
        t: (u64, u64),
        /// Device id, stream id.
        ds: (u32, u32),
        /// Correlation id (equal to the launching API record's).
        corr: u64,
        /// Kernel type (e.g. `KERNEL_AICORE`).
        ty: String,
        /// Kernel name.
        name: String,
    },
    /// A host API call.
    Api {
        /// Start, end.
        t: (u64, u64),
        /// Process id, thread id.
        pt: (u32, u32),
        /// Correlation id.
        corr: u64,
        /// API name.
        name: String,
    },
    /// A collective communication op.
    Communication {
        /// Start, end.
        t: (u64, u64),
        /// Device id, stream id.
        ds: (u32, u32),
        /// Correlation id.
        corr: u64,
        /// `msptiCommunicationDataType` value.
        data_type: u32,
        /// Element count.
        count: u64,
        /// Algorithm.
        alg: String,
        /// Op name.
        name: String,
        /// Communicator name.
        comm: String,
    },
    /// An mstx marker (one end of a range, or an instant).
    Marker {
        /// Flag bits (`MSPTI_ACTIVITY_FLAG_MARKER_*`).
        flag: u32,
        /// 0 host, 1 device.
        source: u32,
        /// Timestamp.
        ts: u64,
        /// Pairs a start with its end.
        id: u64,
        /// pt (host source) or ds (device source).
        object: (u32, u32),
        /// Message (None for end markers).
        name: Option<String>,
        /// Marker domain (None = default).
        domain: Option<String>,
    },
    /// MSPTI reported records it had to drop.
    Dropped {
        /// When it was noticed (ring clock).
        ts: u64,
        /// How many.
        count: u64,
    },
}

/// Substring filters (`api_filter`, `kernel_filter`); empty = keep all.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// API-name substrings.
    pub api: Vec<String>,
    /// Kernel-name substrings.
    pub kernel: Vec<String>,
}

fn keep(list: &[String], name: &[u8]) -> bool {
    list.is_empty() || list.iter().any(|f| f.is_empty() || name.windows(f.len()).any(|w| w == f.as_bytes()))
}

/// The resolved MSPTI entry points.
struct Api {
    subscribe: unsafe extern "C" fn(*mut sys::msptiSubscriberHandle, sys::msptiCallbackFunc, *mut libc::c_void) -> sys::msptiResult,
    unsubscribe: unsafe extern "C" fn(sys::msptiSubscriberHandle) -> sys::msptiResult,
    register: unsafe extern "C" fn(sys::msptiBuffersCallbackRequestFunc, sys::msptiBuffersCallbackCompleteFunc) -> sys::msptiResult,
    enable: unsafe extern "C" fn(sys::msptiActivityKind) -> sys::msptiResult,
    disable: unsafe extern "C" fn(sys::msptiActivityKind) -> sys::msptiResult,
    next: unsafe extern "C" fn(*mut u8, sys::size_t, *mut *mut sys::msptiActivity) -> sys::msptiResult,
    flush_all: unsafe extern "C" fn(u32) -> sys::msptiResult,
    dropped: sys::msptiActivityGetNumDroppedRecords_fn,
    timestamp: sys::msptiGetTimestamp_fn,
    timestamp_cb: sys::msptiActivityRegisterTimestampCallback_fn,
    _lib: Lib,
}

// SAFETY: function pointers into a library that is never unloaded.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

const REQUIRED: [&str; 7] = [
    "msptiSubscribe",
    "msptiUnsubscribe",
    "msptiActivityRegisterCallbacks",
    "msptiActivityEnable",
    "msptiActivityDisable",
    "msptiActivityGetNextRecord",
    "msptiActivityFlushAll",
];

static API: OnceLock<Option<Api>> = OnceLock::new();

fn api() -> Option<&'static Api> {
    API.get_or_init(|| {
        let Some(lib) = cann::open("libmspti.so", &[]) else {
            cann::not_found("libmspti.so", "MSPTI capture (acl_task_time=2)");
            return None;
        };
        cann::require(&lib, "MSPTI capture (acl_task_time=2)", &REQUIRED)?;
        // SAFETY: each type is the documented signature of the symbol (include/cann/msp_cann.h).
        unsafe {
            Some(Api {
                subscribe: lib.sym::<sys::msptiSubscribe_fn>("msptiSubscribe")??,
                unsubscribe: lib.sym::<sys::msptiUnsubscribe_fn>("msptiUnsubscribe")??,
                register: lib.sym::<sys::msptiActivityRegisterCallbacks_fn>("msptiActivityRegisterCallbacks")??,
                enable: lib.sym::<sys::msptiActivityEnable_fn>("msptiActivityEnable")??,
                disable: lib.sym::<sys::msptiActivityDisable_fn>("msptiActivityDisable")??,
                next: lib.sym::<sys::msptiActivityGetNextRecord_fn>("msptiActivityGetNextRecord")??,
                flush_all: lib.sym::<sys::msptiActivityFlushAll_fn>("msptiActivityFlushAll")??,
                dropped: lib.sym::<sys::msptiActivityGetNumDroppedRecords_fn>("msptiActivityGetNumDroppedRecords").flatten(),
                timestamp: lib.sym::<sys::msptiGetTimestamp_fn>("msptiGetTimestamp").flatten(),
                timestamp_cb: lib.sym::<sys::msptiActivityRegisterTimestampCallback_fn>("msptiActivityRegisterTimestampCallback").flatten(),
                _lib: lib,
            })
        }
    })
    .as_ref()
}

// ---- state shared with the callbacks -------------------------------------------------------

static FILTERS: ArcSwapOption<Filters> = ArcSwapOption::const_empty();
/// MSPTI's clock minus the ring clock, subtracted from every MSPTI timestamp.
static OFFSET: AtomicI64 = AtomicI64::new(0);
static QUEUE: parking_lot::Mutex<Vec<Activity>> = parking_lot::Mutex::new(Vec::new());
static QUEUED: AtomicUsize = AtomicUsize::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);
static IN_COMPLETE: AtomicUsize = AtomicUsize::new(0);
static POOL: parking_lot::Mutex<Vec<Box<[u64]>>> = parking_lot::Mutex::new(Vec::new());
static OUTSTANDING: AtomicUsize = AtomicUsize::new(0);

/// Records lost on our side (queue full) since the process started.
pub fn lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// Queue one activity from our side (e.g. a drop notice), for the next drain.
pub fn push(a: Activity) {
    QUEUED.fetch_add(1, Ordering::Relaxed);
    QUEUE.lock().push(a);
}

/// In a forked child: release the hand-off locks if a parent thread held them at the fork (no
/// thread of the parent exists here), and drop the parent's queued records and spare buffers.
pub fn after_fork_child() {
    // SAFETY: in the child only the forking thread exists; it is not inside a callback of ours
    // (callbacks never fork), so a held lock belongs to a thread that is gone.
    unsafe {
        if QUEUE.is_locked() {
            QUEUE.force_unlock();
        }
        if POOL.is_locked() {
            POOL.force_unlock();
        }
    }
    QUEUE.lock().clear();
    QUEUED.store(0, Ordering::Relaxed);
    POOL.lock().clear();
    OUTSTANDING.store(0, Ordering::Relaxed);
    FILTERS.store(None);
}

/// Take every queued activity.
pub fn drain() -> Vec<Activity> {
    let v = std::mem::take(&mut *QUEUE.lock());
    QUEUED.fetch_sub(v.len(), Ordering::Relaxed);
    v
}

extern "C" fn ring_clock() -> u64 {
    monotonic_ns()
}

/// `msptiBuffersCallbackRequestFunc`: hand MSPTI a recycled or fresh 8-aligned buffer.
unsafe extern "C" fn on_request(buffer: *mut *mut u8, size: *mut sys::size_t, max_records: *mut sys::size_t) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if buffer.is_null() || size.is_null() {
            return;
        }
        let b = POOL.try_lock().and_then(|mut p| p.pop()).or_else(|| {
            (OUTSTANDING.fetch_add(1, Ordering::Relaxed) < MAX_BUFFERS).then(|| vec![0u64; BUFFER_BYTES / 8].into_boxed_slice()).or_else(|| {
                OUTSTANDING.fetch_sub(1, Ordering::Relaxed);
                None
            })
        });
        match b {
            Some(b) => {
                *buffer = Box::into_raw(b) as *mut u64 as *mut u8;
                *size = BUFFER_BYTES as sys::size_t;
            }
            None => {
                // Declining makes MSPTI drop (and count) records.
                *buffer = std::ptr::null_mut();
                *size = 0;
            }
        }
        if !max_records.is_null() {
            *max_records = 0;
        }
    }));
}

/// `msptiBuffersCallbackCompleteFunc`: copy the records out, give the buffer back to the pool.
unsafe extern "C" fn on_complete(buffer: *mut u8, size: sys::size_t, valid: sys::size_t) {
    IN_COMPLETE.fetch_add(1, Ordering::AcqRel);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if buffer.is_null() {
            return;
        }
        if let (Some(Some(api)), Some(f)) = (API.get(), FILTERS.load_full()) {
            let acts = read_buffer(api, &f, buffer, valid as usize);
            if !acts.is_empty() {
                let n = acts.len();
                if QUEUED.fetch_add(n, Ordering::Relaxed) + n > MAX_QUEUED {
                    QUEUED.fetch_sub(n, Ordering::Relaxed);
                    LOST.fetch_add(n as u64, Ordering::Relaxed);
                } else {
                    QUEUE.lock().extend(acts);
                }
            }
        }
        if size as usize == BUFFER_BYTES && (buffer as usize) % 8 == 0 {
            // SAFETY: a buffer of ours (on_request made it with this exact length).
            let b = Box::from_raw(std::ptr::slice_from_raw_parts_mut(buffer as *mut u64, BUFFER_BYTES / 8));
            match POOL.try_lock() {
                Some(mut p) if p.len() < 8 => p.push(b),
                _ => {
                    drop(b);
                    OUTSTANDING.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }));
    IN_COMPLETE.fetch_sub(1, Ordering::AcqRel);
}

fn text(p: *const libc::c_char) -> Option<String> {
    // SAFETY: MSPTI's strings are NUL-terminated (or NULL); copied before the callback returns.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn bytes<'a>(p: *const libc::c_char) -> &'a [u8] {
    // SAFETY: as above; the slice is used only inside the completion callback.
    if p.is_null() {
        &[]
    } else {
        unsafe { CStr::from_ptr(p) }.to_bytes()
    }
}

fn ring_time(t: u64) -> u64 {
    (t as i64).wrapping_sub(OFFSET.load(Ordering::Relaxed)) as u64
}

/// Walk one completed buffer with MSPTI's iterator (its cursor is thread-local: always run to the
/// end, and reset it after an error).
unsafe fn read_buffer(api: &Api, f: &Filters, buffer: *mut u8, valid: usize) -> Vec<Activity> {
    let mut out = Vec::new();
    let mut rec: *mut sys::msptiActivity = std::ptr::null_mut();
    for _ in 0..MAX_PER_BUFFER {
        match (api.next)(buffer, valid as sys::size_t, &mut rec) {
            sys::MSPTI_SUCCESS if !rec.is_null() => {
                if let Some(a) = decode(rec as *const u8, f) {
                    out.push(a);
                }
            }
            sys::MSPTI_ERROR_MAX_LIMIT_REACHED => return out,
            _ => break,
        }
    }
    // Error, or the cap: reset MSPTI's cursor (it sees offset >= 0 == validSize).
    (api.next)(buffer, 0, &mut rec);
    out
}

/// Decode one record by its kind; `None` for kinds we do not keep, filtered names, or records
/// without timestamps.
unsafe fn decode(p: *const u8, f: &Filters) -> Option<Activity> {
    let kind = std::ptr::read_unaligned(p as *const sys::msptiActivityKind);
    match kind {
        sys::MSPTI_ACTIVITY_KIND_KERNEL => {
            let r = std::ptr::read_unaligned(p as *const sys::msptiActivityKernel);
            let (start, end, name) = (r.start, r.end, r.name);
            if start == 0 && end == 0 || !keep(&f.kernel, bytes(name)) {
                return None;
            }
            let ds = r.ds;
            Some(Activity::Kernel {
                t: (ring_time(start), ring_time(end)),
                ds: (ds.deviceId, ds.streamId),
                corr: r.correlationId,
                ty: text(r.type_).unwrap_or_default(),
                name: text(name).unwrap_or_default(),
            })
        }
        sys::MSPTI_ACTIVITY_KIND_API => {
            let r = std::ptr::read_unaligned(p as *const sys::msptiActivityApi);
            let (start, end, name) = (r.start, r.end, r.name);
            if start == 0 && end == 0 || !keep(&f.api, bytes(name)) {
                return None;
            }
            let pt = r.pt;
            Some(Activity::Api {
                t: (ring_time(start), ring_time(end)),
                pt: (pt.processId, pt.threadId),
                corr: r.correlationId,
                name: text(name).unwrap_or_default(),
            })
        }
        sys::MSPTI_ACTIVITY_KIND_COMMUNICATION => {
            let r = std::ptr::read_unaligned(p as *const sys::msptiActivityCommunication);
            let (start, end) = (r.start, r.end);
            if start == 0 && end == 0 {
                return None;
            }
            let ds = r.ds;
            Some(Activity::Communication {
                t: (ring_time(start), ring_time(end)),
                ds: (ds.deviceId, ds.streamId),
                corr: r.correlationId,
                data_type: r.dataType,
                count: r.count,
                alg: text(r.algType).unwrap_or_default(),
                name: text(r.name).unwrap_or_default(),
                comm: text(r.commName).unwrap_or_default(),
            })
        }
        sys::MSPTI_ACTIVITY_KIND_MARKER => {
            let r = std::ptr::read_unaligned(p as *const sys::msptiActivityMarker);
            let o = r.objectId;
            // Both union views are two u32s at the same offsets.
            let object = (o.pt.processId, o.pt.threadId);
            Some(Activity::Marker {
                flag: r.flag,
                source: r.sourceKind,
                ts: ring_time(r.timestamp),
                id: r.id,
                object,
                name: text(r.name),
                domain: text(r.domain),
            })
        }
        _ => None,
    }
}

/// A running MSPTI subscription.
pub struct Session {
    api: &'static Api,
    sub: sys::msptiSubscriberHandle,
    subscribed: bool,
    enabled: Vec<sys::msptiActivityKind>,
}

// SAFETY: the handle is an opaque token used only by the device worker.
unsafe impl Send for Session {}

/// Kinds enabled for `acl_task_time: 2` (as the reference: API, KERNEL, COMMUNICATION, MARKER).
const KINDS: [(sys::msptiActivityKind, &str); 4] = [
    (sys::MSPTI_ACTIVITY_KIND_API, "API"),
    (sys::MSPTI_ACTIVITY_KIND_KERNEL, "KERNEL"),
    (sys::MSPTI_ACTIVITY_KIND_COMMUNICATION, "COMMUNICATION"),
    (sys::MSPTI_ACTIVITY_KIND_MARKER, "MARKER"),
];

fn preload_hint(r: sys::msptiResult) -> &'static str {
    if r == sys::MSPTI_ERROR_WITHOUT_LD_PRELOAD {
        " (MSPTI needs LD_PRELOAD=<CANN>/lib64/libmspti.so set before the service starts)"
    } else {
        ""
    }
}

impl Session {
    /// Subscribe and enable the activity kinds; `None` (after one warning) when MSPTI refuses.
    pub fn start(filters: Filters) -> Option<Session> {
        let api = api()?;
        if cann::preloaded("libmspti.so").is_none() {
            log::once(
                Level::Warning,
                "mspti-preload",
                "acl_task_time=2 needs LD_PRELOAD=<CANN>/lib64/libmspti.so set before the service starts; trying without it",
            );
        }
        FILTERS.store(Some(Arc::new(filters)));
        let mut s = Session { api, sub: std::ptr::null_mut(), subscribed: false, enabled: Vec::new() };
        // SAFETY: documented MSPTI calls with valid arguments.
        unsafe {
            match (api.subscribe)(&mut s.sub, None, std::ptr::null_mut()) {
                sys::MSPTI_SUCCESS => s.subscribed = true,
                sys::MSPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED => {
                    log::once(Level::Warning, "mspti-multi", "msptiSubscribe: another MSPTI subscriber exists; continuing with it (as the reference)");
                }
                r => {
                    log::once(Level::Warning, "mspti-sub", &format!("msptiSubscribe failed ({r}){}; MSPTI capture is off", preload_hint(r)));
                    return None;
                }
            }
            let r = (api.register)(Some(on_request), Some(on_complete));
            if r != sys::MSPTI_SUCCESS {
                log::once(Level::Warning, "mspti-reg", &format!("msptiActivityRegisterCallbacks failed ({r}){}; MSPTI capture is off", preload_hint(r)));
                s.stop();
                return None;
            }
            // Before enabling any kind: records then carry the ring clock.
            let installed = api.timestamp_cb.is_some_and(|f| f(Some(ring_clock)) == sys::MSPTI_SUCCESS);
            OFFSET.store(measure_offset(api, installed), Ordering::Relaxed);
            for (k, name) in KINDS {
                match (api.enable)(k) {
                    sys::MSPTI_SUCCESS => s.enabled.push(k),
                    r => {
                        log::once(Level::Warning, &format!("mspti-enable-{k}"), &format!("msptiActivityEnable({name}) failed ({r}){}", preload_hint(r)));
                    }
                }
            }
        }
        if s.enabled.is_empty() {
            s.stop();
            return None;
        }
        log::log(Level::Info, &format!("MSPTI capture on (offset to the ring clock {} ns)", OFFSET.load(Ordering::Relaxed)));
        Some(s)
    }

    /// Deliver every completed buffer now (skipped while a completion is running) and return
    /// the records MSPTI dropped since the last call.
    pub fn flush(&mut self) -> u64 {
        // SAFETY: documented MSPTI calls.
        unsafe {
            if IN_COMPLETE.load(Ordering::Acquire) == 0 {
                (self.api.flush_all)(1);
            }
            let mut n: sys::size_t = 0;
            match self.api.dropped {
                Some(f) if f(std::ptr::null_mut(), 0, &mut n) == sys::MSPTI_SUCCESS => n as u64,
                _ => 0,
            }
        }
    }

    /// Flush, disable the kinds and unsubscribe; returns the final dropped count.
    pub fn stop(mut self) -> u64 {
        let dropped = if self.enabled.is_empty() { 0 } else { self.flush() };
        // SAFETY: documented MSPTI calls.
        unsafe {
            for k in self.enabled.drain(..) {
                (self.api.disable)(k);
            }
            if self.subscribed {
                (self.api.unsubscribe)(self.sub);
            }
        }
        dropped
    }
}

/// MSPTI's clock minus ours. With the timestamp callback installed it is 0 by construction
/// (checked with `msptiGetTimestamp` when present); without it MSPTI uses CLOCK_REALTIME.
fn measure_offset(api: &Api, installed: bool) -> i64 {
    let mut t: u64 = 0;
    // SAFETY: documented call with a valid out pointer.
    let measured = api.timestamp.filter(|f| unsafe { f(&mut t) } == sys::MSPTI_SUCCESS && t != 0).map(|_| t as i64 - monotonic_ns() as i64);
    match (installed, measured) {
        (true, Some(d)) if d.abs() < 1_000_000 => 0,
        (true, Some(d)) => {
            log::once(Level::Warning, "mspti-clock", &format!("MSPTI timestamps differ from the ring clock by {d} ns despite the callback; correcting by it"));
            d
        }
        (true, None) => 0,
        (false, Some(d)) => d,
        (false, None) => realtime_ns() - monotonic_ns() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_filters() {
        let f = vec!["Mat".to_string(), "Add".to_string()];
        assert!(keep(&f, b"MatMulV2"));
        assert!(keep(&f, b"aclnnAdd"));
        assert!(!keep(&f, b"Cast"));
        assert!(keep(&[], b"anything"));
    }

    #[test]
    fn record_offsets_match_the_documented_abi() {
        // CANN_ABI §3.5: packed records, strides rounded up to 8.
        assert_eq!(std::mem::offset_of!(sys::msptiActivityKernel, start), 4);
        assert_eq!(std::mem::offset_of!(sys::msptiActivityKernel, name), 44);
        assert_eq!(std::mem::offset_of!(sys::msptiActivityApi, name), 36);
        assert_eq!(std::mem::offset_of!(sys::msptiActivityCommunication, correlationId), 64);
        assert_eq!(std::mem::offset_of!(sys::msptiActivityMarker, domain), 44);
        for (size, stride) in [
            (std::mem::size_of::<sys::msptiActivityKernel>(), sys::MSPTI_KERNEL_STRIDE),
            (std::mem::size_of::<sys::msptiActivityApi>(), sys::MSPTI_API_STRIDE),
            (std::mem::size_of::<sys::msptiActivityCommunication>(), sys::MSPTI_COMMUNICATION_STRIDE),
            (std::mem::size_of::<sys::msptiActivityMarker>(), sys::MSPTI_MARKER_STRIDE),
        ] {
            assert_eq!((size + 7) & !7, stride as usize);
        }
    }
}
