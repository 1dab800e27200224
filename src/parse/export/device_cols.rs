//! The device-time columns appended to `forward.csv`, `batch.csv` and their profiler.db tables
//! when the capture holds device activity (see [`crate::parse::model::device`]).

use super::csv::ms3;
use crate::parse::model::device::DevTime;

/// Column names, in order.
pub const COLUMNS: [&str; 4] = ["device_kernels", "kernel_time(ms)", "communication_time(ms)", "device_busy_time(ms)"];

/// The cells for one row (empty for rows that get no device time).
pub fn cells(t: Option<DevTime>) -> [String; 4] {
    match t {
        Some(t) => [t.kernels.to_string(), ms3(t.kernel_ns), ms3(t.comm_ns), ms3(t.busy_ns)],
        None => Default::default(),
    }
}
