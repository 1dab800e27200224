//! Output creation that never follows a symlink: directories are opened with
//! `O_DIRECTORY|O_NOFOLLOW` and everything inside is created relative to those descriptors.
//! Directories get mode 0750, files 0640.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Mode of every directory we create.
pub const DIR_MODE: libc::mode_t = 0o750;
/// Mode of every file we create.
pub const FILE_MODE: libc::mode_t = 0o640;

/// An open directory, used as the base of `*at` calls.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad file name {name:?}")));
    }
    Ok(())
}

impl Dir {
    /// Create `path` (and missing parents, 0750) and open it. The last component must be a real
    /// directory, not a symlink.
    pub fn create_all(path: &Path) -> io::Result<Dir> {
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(path) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        Dir::open(path)
    }

    /// Open an existing directory without following a symlink in the last component.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.to_str().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "non-UTF-8 path"))?)?;
        // SAFETY: valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(refine(io::Error::last_os_error(), path));
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Dir { fd: unsafe { OwnedFd::from_raw_fd(fd) }, path: path.to_path_buf() })
    }

    /// Create (0750) or open the subdirectory `name`, refusing a symlink.
    pub fn subdir(&self, name: &str) -> io::Result<Dir> {
        check_name(name)?;
        let c = cstr(name)?;
        // SAFETY: valid fd and C string.
        let r = unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), DIR_MODE) };
        let created = r == 0;
        if !created {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        // SAFETY: as above.
        let fd = unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        let path = self.path.join(name);
        if fd < 0 {
            return Err(refine(io::Error::last_os_error(), &path));
        }
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if created {
            // mkdir is subject to the umask; make the mode exact.
            // SAFETY: valid fd.
            unsafe { libc::fchmod(fd.as_raw_fd(), DIR_MODE) };
        }
        Ok(Dir { fd, path })
    }

    /// Create a new file `name` (mode 0640) exclusively: fails with `AlreadyExists` if anything,
    /// including a symlink, is already there.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        check_name(name)?;
        let c = cstr(name)?;
        // SAFETY: valid fd and C string.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                FILE_MODE as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor.
        let f = unsafe { File::from_raw_fd(fd) };
        // SAFETY: valid fd.
        unsafe { libc::fchmod(f.as_raw_fd(), FILE_MODE) };
        Ok(f)
    }

    /// As [`create_new`](Self::create_new), but `name` appears only once `init` has written it:
    /// the file is made under a temporary name, `init` runs on it, then it is linked to `name`
    /// (`AlreadyExists` if anything is there: still exclusive) and the temporary name removed.
    /// A reader listing the directory never sees it half-written.
    pub fn create_new_with(&self, name: &str, init: impl FnOnce(&File) -> io::Result<()>) -> io::Result<File> {
        check_name(name)?;
        let tmp = format!(".{name}.{}.{}.tmp", std::process::id(), crate::clock::monotonic_ns());
        let f = self.create_new(&tmp)?;
        let (a, b) = (cstr(&tmp)?, cstr(name)?);
        let res = init(&f).and_then(|_| {
            // SAFETY: valid fds and C strings; linkat without AT_SYMLINK_FOLLOW fails if `name`
            // exists in any form.
            if unsafe { libc::linkat(self.fd.as_raw_fd(), a.as_ptr(), self.fd.as_raw_fd(), b.as_ptr(), 0) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
        // SAFETY: valid fd and C string.
        unsafe { libc::unlinkat(self.fd.as_raw_fd(), a.as_ptr(), 0) };
        res.map(|_| f)
    }

    /// The path this directory was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn refine(e: io::Error, path: &Path) -> io::Error {
    let link = matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
        && std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()).unwrap_or(false);
    if link {
        return io::Error::new(io::ErrorKind::InvalidInput, format!("{} is a symlink; refusing to write through it", path.display()));
    }
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Fail with `EFBIG` when growing a file to `len` bytes would exceed the process's
/// `RLIMIT_FSIZE`: the kernel would otherwise send `SIGXFSZ`, which kills the traced process.
pub fn check_fsize_limit(len: u64) -> io::Result<()> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut r) } == 0 && r.rlim_cur != libc::RLIM_INFINITY && len > r.rlim_cur {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    }
    Ok(())
}

/// Reserve the blocks of `f` up to `len` bytes so that writes through a mapping can never hit a
/// full disk (which would raise SIGBUS in the traced process).
pub fn preallocate(f: &File, len: u64) -> io::Result<()> {
    check_fsize_limit(len)?;
    // SAFETY: valid fd.
    let r = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len as libc::off_t) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Replace `path` atomically with `contents`: a temp file in the same directory (same mode as the
/// file it replaces, 0640 when new), then `rename`. Refuses when `path` is a symlink.
pub fn replace_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path);
    if let Ok(m) = &meta {
        if m.file_type().is_symlink() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is a symlink", path.display())));
        }
    }
    let mode = meta.map(|m| m.permissions().mode() & 0o777).unwrap_or(FILE_MODE);
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = Dir::open(parent)?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file name"))?;
    let tmp = format!(".{name}.{}.{}.tmp", std::process::id(), crate::clock::monotonic_ns());
    let mut f = dir.create_new(&tmp)?;
    let res = (|| {
        // SAFETY: valid fd.
        unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) };
        f.write_all(contents)?;
        f.sync_data()?;
        let (a, b) = (cstr(&tmp)?, cstr(name)?);
        // SAFETY: valid fds and C strings.
        if unsafe { libc::renameat(dir.fd.as_raw_fd(), a.as_ptr(), dir.fd.as_raw_fd(), b.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })();
    if res.is_err() {
        if let Ok(a) = cstr(&tmp) {
            // SAFETY: valid fd and C string.
            unsafe { libc::unlinkat(dir.fd.as_raw_fd(), a.as_ptr(), 0) };
        }
    }
    res
}

/// Create `path` with `contents` only if nothing exists there yet (temp file + `link`, so a
/// concurrent creator never sees a partial file and nobody overwrites anybody). Returns whether
/// this call created it.
pub fn create_if_absent(path: &Path, contents: &[u8]) -> io::Result<bool> {
    use std::io::Write;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = Dir::open(parent)?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file name"))?;
    match dir.create_new_with(name, |mut f| f.write_all(contents).and_then(|_| f.sync_data())) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::Dir;
    use std::io;
    use std::os::unix::fs::FileExt;

    /// The name appears only after `init`, with what it wrote; creation stays exclusive; no
    /// temporary file is left behind, whatever happens.
    #[test]
    fn create_new_with_publishes_initialised_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let path = tmp.path().join("a.meta");
        let f = dir
            .create_new_with("a.meta", |f| {
                assert!(!path.exists(), "visible before init finished");
                f.write_all_at(b"header", 0)
            })
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"header");
        // The returned file is the published one.
        f.write_all_at(b"H", 0).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"Header");
        let again = dir.create_new_with("a.meta", |_| Ok(()));
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        let failed = dir.create_new_with("b.meta", |_| Err(io::Error::other("init failed")));
        assert_eq!(failed.unwrap_err().to_string(), "init failed");
        assert!(!tmp.path().join("b.meta").exists());
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.meta")]);
    }
}
