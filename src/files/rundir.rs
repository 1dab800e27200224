//! The run directory `<prof_dir>/<MMDD-HHMM>/`, shared by every process of one service launch.
//!
//! The tail is the launch time of the service's first process. It travels to children in the
//! environment variable `MS_SERVICE_PROF_RUN_TAIL` (`<tail>|<config path>`), which spawned and
//! forked children inherit; launchers that replace the environment are covered by a rendezvous
//! file `/tmp/ms_service_profiler-<uid>/<hash of config path>.tail` (directory 0700) holding
//! `<pid> <start ticks> <tail>` of the first process, adopted while that process is alive.

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::process;

/// The environment variable carrying the run tail to children.
pub const ENV_TAIL: &str = "MS_SERVICE_PROF_RUN_TAIL";

/// Determine this process's run tail for the config at `config` (or none), and export it.
/// Also returns whether this process is the service's *master*: the one that chose the tail (the
/// first process), as opposed to one that adopted it from the environment or from a live first
/// process's rendezvous file. The master alone samples host and NPU usage.
pub fn service_tail(config: Option<&Path>) -> (String, bool) {
    let key = config.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    if let Ok(v) = std::env::var(ENV_TAIL) {
        if let Some((tail, path)) = v.split_once('|') {
            if path == key && valid_tail(tail) {
                return (tail.to_string(), false);
            }
        }
    }
    let (tail, master) = match config.and_then(|_| rendezvous(&key)) {
        Some((tail, first)) => (tail, first),
        None => (crate::clock::local_mmdd_hhmm(), true),
    };
    std::env::set_var(ENV_TAIL, format!("{tail}|{key}"));
    (tail, master)
}

fn valid_tail(t: &str) -> bool {
    t.len() == 9 && t.as_bytes()[4] == b'-' && t.bytes().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit())
}

fn runtime_dir() -> Option<PathBuf> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    // A fixed place, so processes with different TMPDIR/XDG_RUNTIME_DIR still meet.
    let dir = PathBuf::from(format!("/tmp/ms_service_profiler-{uid}"));
    let _ = std::fs::create_dir(&dir);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = std::fs::symlink_metadata(&dir).ok()?;
    if !m.is_dir() || m.uid() != uid {
        return None;
    }
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    Some(dir)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Adopt the tail of a live first process (`false`), or become the first process (`true`).
fn rendezvous(key: &str) -> Option<(String, bool)> {
    let path = runtime_dir()?.join(format!("{:016x}.tail", fnv(key)));
    let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).custom_flags(libc::O_NOFOLLOW).open(&path).ok()?;
    // SAFETY: valid fd; blocks only against another process doing these few syscalls.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    let mut it = s.split_whitespace();
    if let (Some(pid), Some(ticks), Some(tail)) = (it.next(), it.next(), it.next()) {
        if let (Ok(pid), Ok(ticks)) = (pid.parse::<u32>(), ticks.parse::<u64>()) {
            if pid != process::pid() && process::start_ticks(pid) == Some(ticks) && valid_tail(tail) {
                return Some((tail.to_string(), false));
            }
        }
    }
    let tail = crate::clock::local_mmdd_hhmm();
    let me = process::pid();
    let line = format!("{me} {} {tail}\n", process::start_ticks(me).unwrap_or(0));
    let _ = f.set_len(0).and_then(|_| f.rewind()).and_then(|_| f.write_all(line.as_bytes()));
    Some((tail, true))
}

use std::os::unix::fs::OpenOptionsExt;
