//! Output files and directories: directories 0750, files 0640, symlinks refused.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Create (truncate) `path` with mode 0640, whatever the umask. An existing symlink is replaced
/// by a regular file rather than followed.
pub fn create_file(path: &Path) -> std::io::Result<File> {
    if std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
        std::fs::remove_file(path)?;
    }
    let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).custom_flags(libc::O_NOFOLLOW).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o640))?;
    Ok(f)
}

/// Create `dir` (and parents) and set it to 0750. A symlink already there is refused, never
/// followed (its target would otherwise be chmod-ed and written into).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if !std::fs::symlink_metadata(dir)?.is_dir() {
        let msg = format!("{} is a symlink or not a directory; refusing to write through it", dir.display());
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
}

/// The first component of `path` (made absolute) that is a symlink, if any.
pub fn symlink_in(path: &Path) -> Option<std::path::PathBuf> {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().ok()?.join(path) };
    let mut cur = std::path::PathBuf::new();
    for c in abs.components() {
        cur.push(c);
        if std::fs::symlink_metadata(&cur).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            return Some(cur);
        }
    }
    None
}
