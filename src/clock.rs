//! Clocks: CLOCK_MONOTONIC nanoseconds on the hot path; (REALTIME, MONOTONIC) anchor pairs so
//! the reader can convert to wall time and align processes and hosts.

/// Nanoseconds of CLOCK_MONOTONIC (the same clock as Python's `time.monotonic_ns()` on Linux).
#[inline]
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC) as u64
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME).
pub fn realtime_ns() -> i64 {
    read(libc::CLOCK_REALTIME)
}

#[inline]
fn read(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec; clock_gettime with a valid clock id cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// A simultaneous reading of both clocks: `wall = realtime_ns + (mono - monotonic_ns)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anchor {
    /// CLOCK_REALTIME, ns since the epoch.
    pub realtime_ns: i64,
    /// CLOCK_MONOTONIC, ns.
    pub monotonic_ns: u64,
}

impl Anchor {
    /// Read both clocks; the monotonic value is the midpoint of two reads around the realtime one.
    pub fn now() -> Anchor {
        let a = monotonic_ns();
        let realtime_ns = realtime_ns();
        let b = monotonic_ns();
        Anchor { realtime_ns, monotonic_ns: a + (b - a) / 2 }
    }

    /// Convert a monotonic timestamp to epoch ns using this anchor.
    pub fn to_realtime(&self, mono: u64) -> i64 {
        // i128: arbitrary (damaged) timestamps saturate instead of overflowing.
        (self.realtime_ns as i128 + mono as i128 - self.monotonic_ns as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

/// The local timezone's offset from UTC in seconds, right now.
pub fn utc_offset_s() -> i32 {
    // SAFETY: time(NULL) and localtime_r with valid pointers.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i32
    }
}

/// Local `MMDD-HHMM` for the run-directory tail.
pub fn local_mmdd_hhmm() -> String {
    // SAFETY: as above.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        format!("{:02}{:02}-{:02}{:02}", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min)
    }
}
