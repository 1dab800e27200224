//! The C ABI: every exported function, each behind one panic boundary; nothing else.
//!
//! All functions accept NULL pointers (treated as empty / no-op), never abort and never block
//! the caller on I/O of other threads. Exported names share the prefix `msp_`.
//!
//! The functions are safe to call from C by contract (pointers are NULL or valid for the lengths
//! given), so they are not `unsafe fn`; hence the lint allowance below.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::clock;
use crate::core::{self, STATE};
use crate::payload::{bytes, Payload};
use crate::record::Kind;

/// ABI version of this header; bumped on incompatible changes.
pub const MSP_ABI_VERSION: u32 = 1;

/// Attribute kind: `i` holds an integer.
pub const MSP_ATTR_INT: u32 = 1;
/// Attribute kind: `f` holds a float.
pub const MSP_ATTR_FLOAT: u32 = 2;
/// Attribute kind: `s`/`len` hold a UTF-8 string.
pub const MSP_ATTR_STR: u32 = 3;
/// Attribute kind: `i != 0`.
pub const MSP_ATTR_BOOL: u32 = 4;
/// Attribute kind: `s`/`len` hold the JSON text of any value (e.g. a list of rid dicts).
pub const MSP_ATTR_JSON: u32 = 5;

/// Metric kind: an absolute value (`name=`).
pub const MSP_METRIC_GAUGE: u32 = 0;
/// Metric kind: an increment (`name+`).
pub const MSP_METRIC_DELTA: u32 = 1;

/// Error kind for [`msp_count_error`]: an exception inside a Python hook.
pub const MSP_ERROR_HOOK: u32 = 1;
/// Error kind for [`msp_count_error`]: an attribute expression that failed at call time.
pub const MSP_ERROR_EXPR: u32 = 2;

/// State-word bit: capture is on.
pub const MSP_STATE_ENABLED: u64 = 1;
/// State-word bit: a domain filter is active (ask [`msp_is_enabled`] per domain).
pub const MSP_STATE_FILTER: u64 = 2;
/// State word: `(word >> MSP_STATE_LEVEL_SHIFT) & 0xff` is `profiler_level`.
pub const MSP_STATE_LEVEL_SHIFT: u32 = 8;
/// State word: `word >> MSP_STATE_GEN_SHIFT` is the generation.
pub const MSP_STATE_GEN_SHIFT: u32 = 32;
const _: () = assert!(MSP_STATE_ENABLED == core::ENABLED && MSP_STATE_FILTER == core::FILTER);

/// A byte string (not NUL-terminated).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MspStr {
    /// First byte; may be NULL when `len` is 0.
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

/// One typed attribute. `key` is an interned id; which value field is read depends on `kind`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MspAttr {
    /// Interned key (e.g. `"QueueSize="`, `"scope#QueueName"`, `"batch_type"`).
    pub key: u32,
    /// One of the `MSP_ATTR_*` kinds; unknown kinds are skipped.
    pub kind: u32,
    /// Integer / bool value.
    pub i: i64,
    /// Float value.
    pub f: f64,
    /// String / JSON bytes.
    pub s: *const c_char,
    /// Length of `s`.
    pub len: usize,
}

/// Optional parts of a record. Any pointer may be NULL.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MspPayload {
    /// Typed attributes.
    pub attrs: *const MspAttr,
    /// Number of typed attributes.
    pub n_attrs: usize,
    /// Request ids (strings).
    pub rids: *const MspStr,
    /// Number of request ids.
    pub n_rids: usize,
    /// A JSON object of further attributes, stored verbatim (e.g. from Python's `json.dumps`).
    pub json: *const c_char,
    /// Length of `json`.
    pub json_len: usize,
}

/// This process's counters.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MspCounters {
    /// Records committed to the ring.
    pub records_written: u64,
    /// Bytes committed to the ring.
    pub bytes_written: u64,
    /// Records dropped because the ring was full (policy `drop`, budget used up).
    pub records_dropped: u64,
    /// Records overwritten (policy `overwrite`).
    pub records_overwritten: u64,
    /// Records dropped because they were larger than a chunk.
    pub records_oversize: u64,
    /// Ring segment files created.
    pub segments: u64,
    /// Strings interned.
    pub strings: u64,
    /// Hook errors reported through [`msp_count_error`].
    pub hook_errors: u64,
    /// Expression errors reported through [`msp_count_error`].
    pub expr_errors: u64,
}

fn guard<T>(neutral: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(neutral)
}

#[inline(always)]
fn record(kind: Kind, flags: u8, domain: u32, name: u32, t0: u64, t1: u64, p: *const MspPayload) -> bool {
    let state = STATE.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: `p` is the C caller's payload pointer: NULL or valid for its lengths (msp_record's contract).
    state & core::ENABLED != 0 && core::get().record_with_state(state, &unsafe { Payload::new(kind, flags, domain, name, t0, t1, p) })
}

fn now_if_zero(ts: u64) -> u64 {
    if ts == 0 {
        clock::monotonic_ns()
    } else {
        ts
    }
}

/// Initialise from `SERVICE_PROF_CONFIG_PATH` (idempotent; also runs when the library is loaded).
/// Returns 1 when the config file drives capture, 0 when inert (no variable set; capture only
/// through [`msp_start`]), -1 on an internal error.
#[no_mangle]
pub extern "C" fn msp_init() -> i32 {
    guard(-1, || core::get().is_controlled() as i32)
}

/// Stop capture, publish counters and mark this process's files cleanly closed. Also runs at exit.
#[no_mangle]
pub extern "C" fn msp_shutdown() {
    guard((), || {
        if let Some(c) = core::existing() {
            c.shutdown()
        }
    })
}

/// Re-initialise in a forked child (its own file set and control thread). Calling any other
/// entry point in the child does the same lazily; Python should call this from
/// `os.register_at_fork(after_in_child=…)` so capture state is tracked at once.
#[no_mangle]
pub extern "C" fn msp_after_fork_child() {
    guard((), || {
        crate::process::refresh_pid();
        core::get();
    })
}

/// Address of the state word: bit 0 capture on, bit 1 domain filter active, bits 8..15
/// `profiler_level`, bits 32..63 a generation bumped on every change. Stable for the process.
#[no_mangle]
pub extern "C" fn msp_state_word() -> *const u64 {
    guard(std::ptr::null(), || {
        core::get();
        STATE.as_ptr() as *const u64
    })
}

/// Whether a record of `level` in the interned `domain` would be kept now.
#[no_mangle]
pub extern "C" fn msp_is_enabled(level: u32, domain: u32) -> bool {
    guard(false, || core::get().is_enabled(level, domain))
}

/// Intern `s` (`len` bytes) into a small id (> 0), once per process; 0 on failure.
#[no_mangle]
pub extern "C" fn msp_intern(s: *const c_char, len: usize) -> u32 {
    guard(0, || if s.is_null() { 0 } else { core::get().intern(bytes(s, len)) })
}

/// CLOCK_MONOTONIC in ns (equal to Python's `time.monotonic_ns()` on Linux).
#[no_mangle]
pub extern "C" fn msp_now() -> u64 {
    guard(0, clock::monotonic_ns)
}

/// Record a span. Returns whether it was kept.
#[no_mangle]
pub extern "C" fn msp_span(domain: u32, name: u32, start_ns: u64, end_ns: u64, payload: *const MspPayload) -> bool {
    guard(false, || record(Kind::Span, 0, domain, name, start_ns, end_ns, payload))
}

/// Record an instant event (`ts_ns` 0 = now).
#[no_mangle]
pub extern "C" fn msp_event(domain: u32, name: u32, ts_ns: u64, payload: *const MspPayload) -> bool {
    guard(false, || record(Kind::Event, 0, domain, name, now_if_zero(ts_ns), 0, payload))
}

/// Record a metric sample: `kind` is [`MSP_METRIC_GAUGE`] or [`MSP_METRIC_DELTA`].
#[no_mangle]
pub extern "C" fn msp_metric(domain: u32, name: u32, ts_ns: u64, value: f64, kind: u32, payload: *const MspPayload) -> bool {
    let fl = if kind == MSP_METRIC_DELTA { crate::record::flags::DELTA } else { 0 };
    guard(false, || record(Kind::Metric, fl, domain, name, now_if_zero(ts_ns), value.to_bits(), payload))
}

/// Record a span whose attributes are one JSON object (`json` may be NULL).
#[no_mangle]
pub extern "C" fn msp_span_json(domain: u32, name: u32, start_ns: u64, end_ns: u64, json: *const c_char, json_len: usize) -> bool {
    let p = MspPayload { attrs: std::ptr::null(), n_attrs: 0, rids: std::ptr::null(), n_rids: 0, json, json_len };
    guard(false, || record(Kind::Span, 0, domain, name, start_ns, end_ns, &p))
}

/// Record an instant event whose attributes are one JSON object (`ts_ns` 0 = now).
#[no_mangle]
pub extern "C" fn msp_event_json(domain: u32, name: u32, ts_ns: u64, json: *const c_char, json_len: usize) -> bool {
    let p = MspPayload { attrs: std::ptr::null(), n_attrs: 0, rids: std::ptr::null(), n_rids: 0, json, json_len };
    guard(false, || record(Kind::Event, 0, domain, name, now_if_zero(ts_ns), 0, &p))
}

/// Record a link between two request ids (e.g. the API request id and the engine's id).
#[no_mangle]
pub extern "C" fn msp_link(ts_ns: u64, from: *const c_char, from_len: usize, to: *const c_char, to_len: usize) -> bool {
    guard(false, || {
        if STATE.load(std::sync::atomic::Ordering::Relaxed) & core::ENABLED == 0 {
            return false;
        }
        let c = core::get();
        let rids = [MspStr { ptr: from, len: from_len }, MspStr { ptr: to, len: to_len }];
        let p = MspPayload { attrs: std::ptr::null(), n_attrs: 0, rids: rids.as_ptr(), n_rids: 2, json: std::ptr::null(), json_len: 0 };
        record(Kind::Link, 0, 0, c.link_name(), now_if_zero(ts_ns), 0, &p)
    })
}

/// Process meta info (hostname, ppid, dpRankId, processRole, …): kept for the life of the
/// process and written into its file set whether or not capture is on at the time.
#[no_mangle]
pub extern "C" fn msp_meta(key: *const c_char, key_len: usize, value: *const c_char, value_len: usize) {
    guard((), || {
        if !key.is_null() {
            core::get().meta(bytes(key, key_len), bytes(value, value_len))
        }
    })
}

/// Set the framework step counter (drives `profiler_step_num`).
#[no_mangle]
pub extern "C" fn msp_set_step(step: i64) {
    guard((), || core::get().set_step(step))
}

/// The framework step counter.
#[no_mangle]
pub extern "C" fn msp_get_step() -> i64 {
    guard(0, || core::get().step())
}

/// Start capture now (until the next edit of the config file). Without
/// `SERVICE_PROF_CONFIG_PATH` the default config is used.
#[no_mangle]
pub extern "C" fn msp_start() {
    guard((), || core::get().api_capture(true))
}

/// Stop capture now (until the next edit of the config file).
#[no_mangle]
pub extern "C" fn msp_stop() {
    guard((), || core::get().api_capture(false))
}

/// Fill `out` with this process's counters. Returns false if `out` is NULL.
#[no_mangle]
pub extern "C" fn msp_counters(out: *mut MspCounters) -> bool {
    guard(false, || {
        // SAFETY: NULL or a valid, writable struct.
        let Some(out) = (unsafe { out.as_mut() }) else { return false };
        let t = core::get().totals();
        *out = MspCounters {
            records_written: t.written,
            bytes_written: t.bytes,
            records_dropped: t.dropped,
            records_overwritten: t.overwritten,
            records_oversize: t.oversize,
            segments: t.segments,
            strings: t.strings,
            hook_errors: t.hook_errors,
            expr_errors: t.expr_errors,
        };
        true
    })
}

/// Count errors that happened in a caller (the Python shim): `kind` is [`MSP_ERROR_HOOK`] or
/// [`MSP_ERROR_EXPR`].
#[no_mangle]
pub extern "C" fn msp_count_error(kind: u32, n: u64) {
    guard((), || core::get().count_error(kind, n))
}

fn copy_out(s: &str, buf: *mut c_char, cap: usize) -> usize {
    if !buf.is_null() && cap > s.len() {
        // SAFETY: the caller promises `cap` writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, s.len());
            *buf.add(s.len()) = 0;
        }
    }
    s.len()
}

/// The effective config as JSON (plus `capturing`, `run_dir`, `config_path`). Returns the length
/// needed (without the NUL); writes it NUL-terminated when `cap` is larger.
#[no_mangle]
pub extern "C" fn msp_config_json(buf: *mut c_char, cap: usize) -> usize {
    guard(0, || copy_out(&core::get().config_json(), buf, cap))
}

/// The run directory `<prof_dir>/<MMDD-HHMM>` of this service; same return convention as
/// [`msp_config_json`].
#[no_mangle]
pub extern "C" fn msp_run_dir(buf: *mut c_char, cap: usize) -> usize {
    guard(0, || copy_out(&core::get().run_dir().to_string_lossy(), buf, cap))
}

/// [`MSP_ABI_VERSION`] of the loaded library.
#[no_mangle]
pub extern "C" fn msp_abi_version() -> u32 {
    MSP_ABI_VERSION
}
