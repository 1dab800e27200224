//! Process identity: cached pid (refreshed after fork), thread id, host name.

use std::sync::atomic::{AtomicU32, Ordering};

static PID: AtomicU32 = AtomicU32::new(0);

/// This process's pid (cached; the fork handler refreshes it).
#[inline]
pub fn pid() -> u32 {
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    refresh_pid()
}

/// Re-read the pid (after fork).
pub fn refresh_pid() -> u32 {
    // SAFETY: getpid cannot fail.
    let p = unsafe { libc::getpid() } as u32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// The calling thread's OS thread id.
pub fn tid() -> u32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Parent pid.
pub fn ppid() -> u32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// Host name, as the kernel reports it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buffer and length are valid.
    if unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) } != 0 {
        return "localhost".into();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Host name reduced to characters that are safe in a file name.
pub fn hostname_for_files() -> String {
    hostname().chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/pid/stat), to tell a live
/// process from a reused pid.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}
