//! Which inputs `parse` trusts (as the reference does): no symlinks, nothing writable by group or
//! others, nothing owned by another user (root may read files of any owner). The input directory
//! itself failing is an error; a capture file failing is skipped and listed, with the reason.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::reader::FileSet;

/// Why `meta` (of `path`) is not trustworthy for a reader running as `uid`, if it is not.
pub fn problem(path: &Path, meta: &std::fs::Metadata, uid: u32) -> Option<String> {
    if meta.file_type().is_symlink() {
        return Some(format!("{} is a symlink; not followed", path.display()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "{} is writable by group or others (mode {:o}); anyone could have altered it — `chmod go-w` it if you trust it",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    if uid != 0 && meta.uid() != uid && meta.uid() != 0 {
        return Some(format!("{} is owned by uid {}, not by you (uid {uid}); refusing to read another user's files", path.display(), meta.uid()));
    }
    None
}

fn uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Check the input directory; `Err` with a clear message when it is not trustworthy.
pub fn check_root(root: &Path) -> Result<(), String> {
    let m = std::fs::symlink_metadata(root).map_err(|e| format!("input path {}: {e}", root.display()))?;
    problem(root, &m, uid()).map_or(Ok(()), |p| Err(format!("untrusted input: {p}")))
}

/// Check a file set (its meta file, its segments and the directory holding them).
pub fn check_set(fs: &FileSet) -> Result<(), String> {
    let uid = uid();
    let dir = fs.meta.parent().unwrap_or(Path::new("."));
    for p in std::iter::once(dir).chain(std::iter::once(fs.meta.as_path())).chain(fs.segments.iter().map(|s| s.as_path())) {
        let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if let Some(why) = problem(p, &m, uid) {
            return Err(format!("{}: skipped, untrusted input: {why}", fs.stem));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_writable_foreign_and_symlinked_inputs() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("ms_service_h-1.meta");
        std::fs::write(&f, b"x").unwrap();
        let set = |p: u32| std::fs::set_permissions(&f, std::fs::Permissions::from_mode(p)).unwrap();
        let meta = || std::fs::symlink_metadata(&f).unwrap();
        set(0o640);
        assert_eq!(problem(&f, &meta(), meta().uid()), None);
        set(0o644);
        assert_eq!(problem(&f, &meta(), meta().uid()), None, "readable by others is fine");
        set(0o664);
        assert!(problem(&f, &meta(), meta().uid()).unwrap().contains("writable by group or others (mode 664)"));
        set(0o646);
        assert!(problem(&f, &meta(), meta().uid()).is_some());
        set(0o640);
        let other = meta().uid() + 4242;
        if meta().uid() != 0 {
            assert!(problem(&f, &meta(), other).unwrap().contains("owned by uid"));
        }
        assert_eq!(problem(&f, &meta(), 0), None, "root may read any owner's files");
        let l = d.path().join("link.meta");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(problem(&l, &std::fs::symlink_metadata(&l).unwrap(), 0).unwrap().contains("symlink"));
        // a foreign owner (chown works as root; otherwise the uid check above covered it)
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&f, Some(4242), None).unwrap();
            assert!(problem(&f, &meta(), 1000).unwrap().contains("owned by uid 4242, not by you (uid 1000)"));
        }
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_root(d.path()).unwrap_err().contains("untrusted input"));
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        assert!(check_root(d.path()).is_ok());
    }
}
