//! Mirroring host spans to mstx ranges (`libms_tools_ext`, CANN_ABI §4) while ACL prof collects,
//! so CANN's own timeline (`ACL_PROF_MSPROFTX`) shows the service's spans next to the operators.
//!
//! Host spans reach the recorder when they end, so the mirrored range marks the moment the span
//! was recorded (start and end back to back); its message is `<domain>::<name>`, at most 127
//! bytes. The cost when mirroring is off is one bit test on the state word the record path
//! already loads ([`crate::core::MSTX`]).

use std::sync::OnceLock;

use super::cann::{self, Lib};
use super::sys;
use crate::intern;

struct Api {
    start: unsafe extern "C" fn(*const libc::c_char, sys::aclrtStream) -> sys::mstxRangeId,
    end: unsafe extern "C" fn(sys::mstxRangeId),
    _lib: Lib,
}

// SAFETY: function pointers into a library that is never unloaded.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

static API: OnceLock<Option<Api>> = OnceLock::new();

/// Load `libms_tools_ext` once; whether mirroring is possible. Absence is not an error (nothing
/// is logged): mirroring is a convenience of ACL prof mode.
pub fn available() -> bool {
    API.get_or_init(|| {
        let lib = cann::open("libms_tools_ext.so", &[])?;
        cann::require(&lib, "mstx mirroring of host spans", &["mstxRangeStartA", "mstxRangeEnd"])?;
        // SAFETY: documented signatures.
        unsafe {
            Some(Api { start: lib.sym::<sys::mstxRangeStartA_fn>("mstxRangeStartA")??, end: lib.sym::<sys::mstxRangeEnd_fn>("mstxRangeEnd")??, _lib: lib })
        }
    })
    .is_some()
}

/// Mark one host span (interned `domain` and `name`) as an mstx range with no stream.
pub fn mirror(domain: u32, name: u32) {
    let Some(Some(api)) = API.get() else { return };
    let mut msg = [0u8; sys::MSTX_MESSAGE_MAX as usize];
    let mut n = 0;
    let d = intern::resolve(domain);
    let s = intern::resolve(name);
    for part in [d.as_deref().unwrap_or(b""), b"::", s.as_deref().unwrap_or(b"")] {
        let k = part.len().min(msg.len() - 1 - n);
        msg[n..n + k].copy_from_slice(&part[..k]);
        n += k;
    }
    // SAFETY: msg is NUL-terminated (the last byte is never written).
    unsafe {
        let id = (api.start)(msg.as_ptr() as *const libc::c_char, std::ptr::null_mut());
        if id != sys::MSTX_INVALID_ID as u64 {
            (api.end)(id);
        }
    }
}
