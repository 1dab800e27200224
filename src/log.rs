//! Diagnostics to stderr in the msServiceProfiler line format, filtered by `PROF_LOG_LEVEL`.
//!
//! `[msservice_profiler] [PID:<pid>] [<LEVEL>] <message>`. Each line is written with one
//! `write(2)` so lines from several threads never interleave. [`once`] suppresses repeats of
//! the same message key for the life of the process.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

/// Severity of a diagnostic line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Developer detail.
    Debug = 0,
    /// Normal progress (capture started, stopped, files opened).
    Info = 1,
    /// Something was ignored or defaulted; the service keeps running.
    Warning = 2,
    /// Something failed; capture may be off.
    Error = 3,
}

const UNSET: u8 = 255;
const OFF: u8 = 4;
static THRESHOLD: AtomicU8 = AtomicU8::new(UNSET);
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn threshold() -> u8 {
    let t = THRESHOLD.load(Ordering::Relaxed);
    if t != UNSET {
        return t;
    }
    let t = match std::env::var("PROF_LOG_LEVEL").unwrap_or_default().to_ascii_uppercase().as_str() {
        "DEBUG" => 0,
        "WARNING" | "WARN" => 2,
        "ERROR" => 3,
        "NONE" | "OFF" => OFF,
        _ => 1,
    };
    THRESHOLD.store(t, Ordering::Relaxed);
    t
}

/// Print lines of `level` and above from now on (overrides `PROF_LOG_LEVEL`; for the CLI's
/// `--log-level`).
pub fn set_level(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

/// True when a line of `level` would be printed.
pub fn enabled(level: Level) -> bool {
    (level as u8) >= threshold()
}

/// Print one line at `level`.
pub fn log(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    let name = match level {
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Warning => "WARNING",
        Level::Error => "ERROR",
    };
    let line = format!("[msservice_profiler] [PID:{}] [{}] {}\n", std::process::id(), name, msg);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Print `msg` only the first time `key` is seen in this process. Returns whether it printed.
/// Never blocks: if the registry is busy (another thread, or a fork), the line is printed.
pub fn once(level: Level, key: &str, msg: &str) -> bool {
    if let Ok(mut seen) = SEEN.try_lock() {
        if !seen.get_or_insert_with(HashSet::new).insert(key.to_string()) {
            return false;
        }
    }
    log(level, msg);
    true
}

/// `log!(Level::Warning, "fmt", args…)`.
#[macro_export]
macro_rules! log {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) { $crate::log::log($lvl, &format!($($arg)*)) }
    };
}
