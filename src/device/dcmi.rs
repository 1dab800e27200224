//! NPU memory through DCMI (`libdcmi`, CANN_ABI §6), loaded at run time: every (card, device) pair
//! is enumerated once; each sample reads `dcmi_get_device_memory_info_v3`, switching for good to
//! `dcmi_get_device_hbm_info` after its first failure (as the reference).

use super::cann::{self, Lib};
use super::sys;
use crate::log::{self, Level};

/// Where the driver installs DCMI (searched after the CANN roots).
const DRIVER_DIRS: [&str; 2] = ["/usr/local/Ascend/driver/lib64/driver", "/usr/local/Ascend/driver/lib64"];
const FEATURE: &str = "NPU memory sampling (npu_memory_usage_freq)";

/// One NPU's memory: used bytes and percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Enumeration index (card-major), the `deviceId` attribute.
    pub index: u32,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Percent in use (0–100).
    pub percent: f64,
}

/// The opened library and its devices.
pub struct Dcmi {
    v3: sys::dcmi_get_device_memory_info_v3_fn,
    hbm: sys::dcmi_get_device_hbm_info_fn,
    use_hbm: bool,
    devices: Vec<(i32, i32)>,
    _lib: Lib,
}

// SAFETY: function pointers into a library that is never unloaded; used by one thread.
unsafe impl Send for Dcmi {}

const MB: u64 = 1 << 20;

impl Dcmi {
    /// Load, initialise and enumerate; `None` after one log line when impossible.
    pub fn open() -> Option<Dcmi> {
        let Some(lib) = cann::open("libdcmi.so", &DRIVER_DIRS) else {
            cann::not_found("libdcmi.so", FEATURE);
            return None;
        };
        cann::require(&lib, FEATURE, &["dcmi_init", "dcmi_get_card_list", "dcmi_get_device_id_in_card"])?;
        // SAFETY: documented signatures and arguments.
        unsafe {
            let init = lib.sym::<sys::dcmi_init_fn>("dcmi_init")??;
            let cards = lib.sym::<sys::dcmi_get_card_list_fn>("dcmi_get_card_list")??;
            let in_card = lib.sym::<sys::dcmi_get_device_id_in_card_fn>("dcmi_get_device_id_in_card")??;
            let v3 = lib.sym::<sys::dcmi_get_device_memory_info_v3_fn>("dcmi_get_device_memory_info_v3").flatten();
            let hbm = lib.sym::<sys::dcmi_get_device_hbm_info_fn>("dcmi_get_device_hbm_info").flatten();
            if v3.is_none() && hbm.is_none() {
                cann::require(&lib, FEATURE, &["dcmi_get_device_memory_info_v3", "dcmi_get_device_hbm_info"])?;
            }
            let r = init();
            if r != 0 {
                log::once(Level::Warning, "dcmi-init", &format!("dcmi_init failed ({r}); {FEATURE} is off"));
                return None;
            }
            let (mut n, mut list) = (0i32, [0i32; 64]);
            if cards(&mut n, list.as_mut_ptr(), list.len() as i32) != 0 {
                log::once(Level::Warning, "dcmi-cards", &format!("dcmi_get_card_list failed; {FEATURE} is off"));
                return None;
            }
            let mut devices = Vec::new();
            for &card in &list[..(n.clamp(0, 64) as usize)] {
                let (mut max, mut mcu, mut cpu) = (0i32, 0i32, 0i32);
                if in_card(card, &mut max, &mut mcu, &mut cpu) == 0 {
                    devices.extend((0..max.clamp(0, 64)).map(|d| (card, d)));
                }
            }
            Some(Dcmi { v3, hbm, use_hbm: v3.is_none(), devices, _lib: lib })
        }
    }

    /// Read every device once.
    pub fn sample(&mut self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.devices.len());
        for (i, &(card, dev)) in self.devices.iter().enumerate() {
            // SAFETY: documented signatures; zeroed plain-old-data out structs.
            unsafe {
                if !self.use_hbm {
                    let mut m: sys::dcmi_get_memory_info_stru = std::mem::zeroed();
                    if let Some(f) = self.v3.filter(|f| f(card, dev, &mut m) == 0) {
                        let _ = f;
                        let used = m.memory_size.saturating_sub(m.memory_available);
                        out.push(Sample { index: i as u32, used_bytes: used * MB, percent: m.utiliza as f64 });
                        continue;
                    }
                    self.use_hbm = true;
                }
                let mut h: sys::dcmi_hbm_info = std::mem::zeroed();
                if let Some(f) = self.hbm {
                    if f(card, dev, &mut h) == 0 {
                        let pct = h.memory_usage as f64 * 100.0 / h.memory_size.max(1) as f64;
                        out.push(Sample { index: i as u32, used_bytes: h.memory_usage * MB, percent: pct });
                    }
                }
            }
        }
        out
    }
}
