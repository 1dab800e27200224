//! `acl_task_time: 1` — ACL prof collection through `libmsprofiler` (CANN_ABI §2): CANN writes its
//! own `PROF_*` directories under the run directory; the parser imports their exported JSON.
//!
//! Start: `aclprofInit(runDir)` → `aclprofCreateConfig([device], 1, aicoreMetrics, NULL, mask)` →
//! `aclprofStart`; any failure undoes what was done (`DestroyConfig`, `Finalize`) and leaves ACL
//! prof off after one warning. Stop: `aclprofStop` → `aclprofDestroyConfig` → `aclprofFinalize`.

use std::ffi::CString;
use std::path::Path;
use std::sync::OnceLock;

use super::cann::{self, Lib};
use super::sys;
use crate::log::{self, Level};

struct Api {
    init: unsafe extern "C" fn(*const libc::c_char, sys::size_t) -> sys::aclError,
    finalize: unsafe extern "C" fn() -> sys::aclError,
    create: unsafe extern "C" fn(*mut u32, u32, sys::aclprofAicoreMetrics, *const sys::aclprofAicoreEvents, u64) -> *mut sys::aclprofConfig,
    destroy: unsafe extern "C" fn(*const sys::aclprofConfig) -> sys::aclError,
    start: unsafe extern "C" fn(*const sys::aclprofConfig) -> sys::aclError,
    stop: unsafe extern "C" fn(*const sys::aclprofConfig) -> sys::aclError,
    _lib: Lib,
}

// SAFETY: function pointers into a library that is never unloaded.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

const FEATURE: &str = "ACL prof capture (acl_task_time=1)";
const REQUIRED: [&str; 6] = ["aclprofInit", "aclprofFinalize", "aclprofCreateConfig", "aclprofDestroyConfig", "aclprofStart", "aclprofStop"];

static API: OnceLock<Option<Api>> = OnceLock::new();

fn api() -> Option<&'static Api> {
    API.get_or_init(|| {
        let Some(lib) = cann::open("libmsprofiler.so", &[]) else {
            cann::not_found("libmsprofiler.so", FEATURE);
            return None;
        };
        cann::require(&lib, FEATURE, &REQUIRED)?;
        // SAFETY: each type is the documented signature of the symbol (include/cann/msp_cann.h).
        unsafe {
            Some(Api {
                init: lib.sym::<sys::aclprofInit_fn>("aclprofInit")??,
                finalize: lib.sym::<sys::aclprofFinalize_fn>("aclprofFinalize")??,
                create: lib.sym::<sys::aclprofCreateConfig_fn>("aclprofCreateConfig")??,
                destroy: lib.sym::<sys::aclprofDestroyConfig_fn>("aclprofDestroyConfig")??,
                start: lib.sym::<sys::aclprofStart_fn>("aclprofStart")??,
                stop: lib.sym::<sys::aclprofStop_fn>("aclprofStop")??,
                _lib: lib,
            })
        }
    })
    .as_ref()
}

/// Whether `libmsprofiler` is loadable with every needed symbol (loads it on first call).
pub fn available() -> bool {
    api().is_some()
}

/// What to collect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `dataTypeConfig` (`Config::acl_data_type_mask`).
    pub mask: u64,
    /// `aclprofAicoreMetrics`.
    pub aicore_metrics: u32,
}

/// A started ACL prof collection.
pub struct Session {
    api: &'static Api,
    config: *mut sys::aclprofConfig,
    /// The device it collects from.
    pub device: u32,
}

// SAFETY: the config is an opaque handle used only by the device worker.
unsafe impl Send for Session {}

impl Session {
    /// Start collecting from `device` into `run_dir`; `None` (after one warning) on failure.
    pub fn start(run_dir: &Path, device: u32, s: &Settings) -> Option<Session> {
        let api = api()?;
        let dir = CString::new(run_dir.as_os_str().as_encoded_bytes()).ok()?;
        let warn = |what: &str, r: i64| {
            log::log(Level::Warning, &format!("{what} failed ({r}); ACL prof capture is off, host capture continues"));
        };
        // SAFETY: documented calls with valid arguments; the device list outlives the call.
        unsafe {
            let r = (api.init)(dir.as_ptr(), dir.as_bytes().len() as sys::size_t);
            if r != sys::ACL_SUCCESS as i32 && r != sys::ACL_ERROR_REPEAT_INITIALIZE as i32 {
                warn("aclprofInit", r as i64);
                return None;
            }
            let mut devs = [device];
            let config = (api.create)(devs.as_mut_ptr(), 1, s.aicore_metrics, std::ptr::null(), s.mask);
            if config.is_null() {
                warn("aclprofCreateConfig", 0);
                (api.finalize)();
                return None;
            }
            let r = (api.start)(config);
            if r != sys::ACL_SUCCESS as i32 {
                warn("aclprofStart", r as i64);
                (api.destroy)(config);
                (api.finalize)();
                return None;
            }
            log::log(Level::Info, &format!("ACL prof capture on (device {device}, data types {:#x}) into {}", s.mask, run_dir.display()));
            Some(Session { api, config, device })
        }
    }

    /// Stop, destroy the config, finalize.
    pub fn stop(self) {
        // SAFETY: the config came from aclprofCreateConfig and is used once more here.
        unsafe {
            let r = (self.api.stop)(self.config);
            if r != sys::ACL_SUCCESS as i32 {
                log::log(Level::Warning, &format!("aclprofStop failed ({r})"));
            }
            (self.api.destroy)(self.config);
            (self.api.finalize)();
        }
        log::log(Level::Info, "ACL prof capture stopped");
    }
}
