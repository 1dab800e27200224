//! The NPU device id of this process, from the device-state callback of `libprofapi`
//! (CANN_ABI §5): CANN calls it when the process opens or sets a device. ACL prof needs the id;
//! without the library or the callback there is none and ACL prof collection is skipped.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use super::cann;
use super::sys;
use crate::log::{self, Level};

/// Size of `ProfSetDevParaDevice`.
const PAYLOAD: u32 = 12;
static DEVICE: AtomicI64 = AtomicI64::new(-1);
static REGISTERED: OnceLock<bool> = OnceLock::new();

unsafe fn note(data: *const u8, len: u32) {
    if data.is_null() || len != PAYLOAD {
        return;
    }
    // Fields by offset (chipId 0, deviceId 4, isOpen 8): a C bool is read as a byte, never as a
    // Rust bool, whatever the caller stored there.
    let device = std::ptr::read_unaligned(data.add(std::mem::offset_of!(sys::ProfSetDevParaDevice, deviceId)) as *const u32);
    let open = *data.add(std::mem::offset_of!(sys::ProfSetDevParaDevice, isOpen));
    if open != 0 {
        DEVICE.store(device as i64, Ordering::Release);
    }
}

unsafe extern "C" fn legacy_cb(data: *mut sys::ProfSetDevParaDevice, len: u32) {
    let _ = std::panic::catch_unwind(|| note(data as *const u8, len));
}

unsafe extern "C" fn profile_cb(data: *mut libc::c_void, len: u32) -> i32 {
    let _ = std::panic::catch_unwind(|| note(data as *const u8, len));
    0
}

/// Register the callback once per process (legacy API first, as the reference). Returns whether
/// a callback is in place.
pub fn register() -> bool {
    *REGISTERED.get_or_init(|| {
        let Some(lib) = cann::open("libprofapi.so", &[]) else { return false };
        // SAFETY: documented signatures; the callbacks live as long as the process.
        let ok = unsafe {
            if let Some(Some(f)) = lib.sym::<sys::profRegDeviceStateCallback_fn>("profRegDeviceStateCallback") {
                f(Some(legacy_cb)) == 0
            } else if let Some(Some(f)) = lib.sym::<sys::MsprofRegisterProfileCallback_fn>("MsprofRegisterProfileCallback") {
                f(sys::PROFILE_DEVICE_STATE_C_CALLBACK as i32, profile_cb as *mut libc::c_void, std::mem::size_of::<*const ()>() as u32) == 0
            } else {
                false
            }
        };
        if ok {
            std::mem::forget(lib); // the callback points into us and is called from it
        } else {
            log::once(Level::Warning, "profapi", &format!("{}: no usable device-state callback; the device id stays unknown", lib.path.display()));
        }
        ok
    })
}

/// The last device this process opened, if known.
pub fn device() -> Option<u32> {
    u32::try_from(DEVICE.load(Ordering::Acquire)).ok()
}
