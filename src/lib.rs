//! vLLM service profiler: a C-ABI recorder on a crash-safe, per-process mmap ring, the control
//! plane driven by `ms_service_profiler_config.json`, and the reader of what it writes.
//!
//! Pipeline: `ffi` (C ABI, `payload` its records) → `core` (state, control) → `ring` (lock-free writer) → `files`
//! (segments, meta file) → `reader` (validate, recover) → parser (later).

#![deny(missing_docs)]

pub mod clock;
pub mod control;
pub mod core;
pub mod device;
pub mod ffi;
pub mod files;
pub mod intern;
pub mod log;
pub mod parse;
pub mod payload;
pub mod process;
pub mod reader;
pub mod record;
pub mod ring;

/// Runs when the library is loaded (LD_PRELOAD, dlopen, ctypes): initialise from
/// `SERVICE_PROF_CONFIG_PATH` if it is set.
extern "C" fn on_load() {
    if std::env::var_os("SERVICE_PROF_CONFIG_PATH").is_some_and(|v| !v.is_empty()) {
        ffi::msp_init();
    }
}

/// Runs at process exit: flush and mark the files cleanly closed.
extern "C" fn on_unload() {
    ffi::msp_shutdown();
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static ON_UNLOAD: extern "C" fn() = on_unload;
