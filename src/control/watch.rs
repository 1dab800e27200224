//! Noticing edits of the config file: a `stat` per poll compared on (device, inode, size,
//! mtime ns, ctime ns), which catches in-place writes and rename-style writes (`sed -i`, editors)
//! alike, including several edits within one second.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::config::{self, Config, ParseError, Warning};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp { dev: m.dev(), ino: m.ino(), size: m.size(), mtime: (m.mtime(), m.mtime_nsec()), ctime: (m.ctime(), m.ctime_nsec()) })
}

/// What a poll found.
#[derive(Debug)]
pub enum Change {
    /// A new, valid config.
    Config(Config, Vec<Warning>),
    /// The file changed but is not valid JSON; keep the current state.
    Invalid(ParseError, u64),
    /// The file is gone or unreadable; keep the current state.
    Unreadable(String),
}

/// Watches one config file.
pub struct Watch {
    path: PathBuf,
    home: PathBuf,
    last: Option<Stamp>,
}

impl Watch {
    /// Watch `path`; `home` expands `~` and the default `prof_dir`.
    pub fn new(path: PathBuf, home: PathBuf) -> Watch {
        Watch { path, home, last: None }
    }

    /// The watched path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Check the file; `Some` when it changed since the last poll.
    pub fn poll(&mut self) -> Option<Change> {
        let now = stamp(&self.path);
        if now == self.last {
            return None; // unchanged, or still missing (reported once when it went away)
        }
        self.last = now;
        let meta = std::fs::symlink_metadata(&self.path);
        if meta.as_ref().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            return Some(Change::Unreadable(format!("{} is a symlink; not read", self.path.display())));
        }
        if meta.as_ref().is_ok_and(|m| !m.is_file()) {
            return Some(Change::Unreadable(format!("{} is not a regular file; not read", self.path.display())));
        }
        match read_config(&self.path) {
            Err(e) => Some(Change::Unreadable(format!("cannot read {}: {e}", self.path.display()))),
            Ok(text) => Some(match config::parse(&text, &self.home) {
                Ok((c, w)) => Change::Config(c, w),
                Err(e) => Change::Invalid(e, hash(&text)),
            }),
        }
    }

    /// Take the file as it is now as already seen (after we rewrote it ourselves).
    pub fn accept_current(&mut self) {
        self.last = stamp(&self.path);
    }
}

/// Largest config file read (a real one is a few hundred bytes).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Read the config text without ever blocking (a FIFO swapped in is opened non-blocking) or
/// following a symlink, and without reading more than [`MAX_CONFIG_BYTES`].
pub fn read_config(path: &Path) -> std::io::Result<String> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut text = String::new();
    f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    Ok(text)
}

/// A content hash for "warn once per distinct content".
pub fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}
