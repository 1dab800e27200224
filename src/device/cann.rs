//! Finding and loading the CANN libraries at run time (never linked): install-root discovery,
//! `dlopen(RTLD_LAZY|RTLD_LOCAL)`, and per-symbol resolution so that a missing symbol disables only
//! the feature that needs it. Loaded libraries are never unloaded (their callbacks point into us,
//! and ours into them).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use libloading::os::unix::{Library, RTLD_LAZY, RTLD_LOCAL};

use crate::log::{self, Level};

/// A loaded library (kept for the life of the process).
pub struct Lib {
    /// File name, e.g. `libmspti.so`.
    pub soname: &'static str,
    /// Where it was found (the bare soname when the loader path or an earlier load provided it).
    pub path: PathBuf,
    lib: Library,
}

/// The directories searched, in order (CANN_ABI §1): `$ASCEND_HOME_PATH/lib64`,
/// `$ASCEND_HOME_PATH/<arch>-linux/lib64`, the same under `$ASCEND_TOOLKIT_HOME`, then the standard
/// install prefixes. Extra directories for one library (DCMI's driver path) come after these.
pub fn search_dirs() -> Vec<PathBuf> {
    let arch = format!("{}-linux", std::env::consts::ARCH);
    let mut dirs = Vec::new();
    for var in ["ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"] {
        if let Some(root) = std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from) {
            dirs.push(root.join("lib64"));
            dirs.push(root.join(&arch).join("lib64"));
        }
    }
    dirs.push(PathBuf::from("/usr/local/Ascend/cann/lib64"));
    dirs.push(PathBuf::from("/usr/local/Ascend/ascend-toolkit/latest/lib64"));
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// The `libmspti.so` named in `LD_PRELOAD`, if any (MSPTI must be the preloaded copy).
pub fn preloaded(soname: &str) -> Option<PathBuf> {
    let v = std::env::var_os("LD_PRELOAD")?;
    v.as_bytes()
        .split(|&b| b == b':' || b == b' ')
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(OsStr::from_bytes(p)))
        .find(|p| p.file_name().is_some_and(|f| f.as_bytes() == soname.as_bytes()))
}

fn dlopen(path: &OsStr, flags: libc::c_int) -> Option<Library> {
    // SAFETY: loading a shared library runs its initialisers; the CANN libraries are designed to be
    // loaded into the serving process.
    unsafe { Library::open(Some(path), flags) }.ok()
}

/// Load `soname`: an already-loaded copy first (e.g. preloaded MSPTI, or one torch_npu loaded),
/// then `LD_PRELOAD`, the search directories, `extra` directories, and finally the loader path.
pub fn open(soname: &'static str, extra: &[&str]) -> Option<Lib> {
    let bare = OsStr::new(soname);
    if let Some(lib) = dlopen(bare, RTLD_LAZY | RTLD_LOCAL | libc::RTLD_NOLOAD) {
        return Some(Lib { soname, path: PathBuf::from(soname), lib });
    }
    let mut candidates: Vec<PathBuf> = preloaded(soname).into_iter().collect();
    candidates.extend(search_dirs().into_iter().map(|d| d.join(soname)));
    candidates.extend(extra.iter().map(|d| PathBuf::from(d).join(soname)));
    for p in candidates.iter().filter(|p| p.exists()) {
        if let Some(lib) = dlopen(p.as_os_str(), RTLD_LAZY | RTLD_LOCAL) {
            log::log(Level::Debug, &format!("loaded {}", p.display()));
            return Some(Lib { soname, path: p.clone(), lib });
        }
        log::once(Level::Warning, &format!("dlopen-{}", p.display()), &format!("{} exists but cannot be loaded; skipping it", p.display()));
    }
    dlopen(bare, RTLD_LAZY | RTLD_LOCAL).map(|lib| Lib { soname, path: PathBuf::from(soname), lib })
}

impl Lib {
    /// Resolve `name` as a function pointer of type `T` (a bindgen `Option<unsafe extern "C" fn>`).
    ///
    /// # Safety
    /// `T` must be the correct pointer type for the symbol.
    pub unsafe fn sym<T: Copy>(&self, name: &str) -> Option<T> {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        self.lib.get::<T>(n.as_slice()).ok().map(|s| *s)
    }
}

/// Resolve every name in `names` or report the missing ones in one warning (keyed once per
/// library and feature) and return `None`.
pub fn require(lib: &Lib, feature: &str, names: &[&str]) -> Option<()> {
    // SAFETY: only checking presence; the pointer is not called.
    let missing: Vec<&str> = names.iter().copied().filter(|n| unsafe { lib.sym::<*const libc::c_void>(n) }.is_none()).collect();
    if missing.is_empty() {
        return Some(());
    }
    log::once(
        Level::Warning,
        &format!("cann-missing-{}-{feature}", lib.soname),
        &format!("{} lacks {} needed for {feature}; {feature} is off, host capture continues", lib.path.display(), missing.join(", ")),
    );
    None
}

/// The one line logged when a CANN library is not installed at all.
pub fn not_found(soname: &str, feature: &str) {
    let dirs: Vec<String> = search_dirs().iter().map(|d| d.display().to_string()).collect();
    log::once(
        Level::Info,
        &format!("cann-absent-{soname}"),
        &format!("{soname} not found (searched {} and the loader path): {feature} is off, host-only capture", dirs.join(", ")),
    );
}
