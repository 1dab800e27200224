//! The process-wide recorder: one `Core` per process (a fresh one after `fork`), holding the
//! control state, the lazily opened file set and the ring. The C ABI in `ffi.rs` is a thin layer
//! over this module.
//!
//! The state word [`STATE`] is what hooks read to decide, without a call, whether to record:
//! bit 0 capture on, bit 1 domain filter active, bits 8..15 `profiler_level`, bits 32..63 a
//! generation bumped on every change.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use crate::clock::{monotonic_ns, Anchor};
use crate::control::config::{self, Config, FullPolicy};
use crate::control::watch::{Change, Watch};
use crate::files::fs::{self, Dir};
use crate::files::meta::{Counter, MetaFile, ProcessInfo, Reason};
use crate::files::rundir;
use crate::log::{self, Level};
use crate::record::Encode;
use crate::ring::{Geometry, Ring};
use crate::{intern, process};

/// The state word (see the module docs).
pub static STATE: AtomicU64 = AtomicU64::new(0);
/// State bit: capture is on.
pub const ENABLED: u64 = 1;
/// State bit: a domain filter is active.
pub const FILTER: u64 = 2;
/// State bit: mirror host spans to mstx ranges (set by the device path while ACL prof runs).
pub const MSTX: u64 = 4;

static CORE: AtomicPtr<Core> = AtomicPtr::new(std::ptr::null_mut());
static INIT_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
static FORK_HANDLERS: Once = Once::new();

/// Name of the sub-directory of the run directory holding the file sets.
pub const TRACE_DIR: &str = "Trace_Service";
/// Control loop period.
pub const TICK: Duration = Duration::from_millis(50);
const ANCHOR_EVERY_NS: u64 = 10_000_000_000;
const DOMAIN_BITS: usize = 8192;

/// Totals for `msp_counters`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Records committed.
    pub written: u64,
    /// Bytes committed.
    pub bytes: u64,
    /// Dropped, ring full.
    pub dropped: u64,
    /// Overwritten (overwrite policy).
    pub overwritten: u64,
    /// Dropped, larger than a chunk.
    pub oversize: u64,
    /// Segments created.
    pub segments: u64,
    /// Strings interned.
    pub strings: u64,
    /// Hook errors reported by the shim.
    pub hook_errors: u64,
    /// Expression errors reported by the shim.
    pub expr_errors: u64,
}

struct Control {
    cfg: Config,
    enabled: bool,
    started: u64,
    watch: Option<Watch>,
    bad_content: Option<u64>,
    last_anchor: u64,
}

struct Files {
    meta: Option<MetaFile>,
    next_string: u32,
    cache: Vec<(Vec<u8>, Vec<u8>)>,
    failed_gen: Option<u64>,
}

/// The per-process recorder.
pub struct Core {
    pid: u32,
    home: PathBuf,
    cwd: PathBuf,
    config_path: Option<PathBuf>,
    tail: String,
    control: Mutex<Control>,
    files: Mutex<Files>,
    ring: AtomicPtr<Ring>,
    step: AtomicI64,
    step_target: AtomicI64,
    domain_bits: Vec<AtomicU64>,
    hook_errors: AtomicU64,
    expr_errors: AtomicU64,
    shutdown: AtomicBool,
    thread: Mutex<Option<std::thread::Thread>>,
    link_name: AtomicU32,
    /// The first process of the service (see `rundir::service_tail`): samples host/NPU usage.
    master: bool,
    device: crate::device::Device,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The current process's core, creating it on first use (and again in a forked child).
#[inline]
pub fn get() -> &'static Core {
    let p = CORE.load(Ordering::Acquire);
    // SAFETY: cores are leaked, never freed.
    if let Some(c) = unsafe { p.as_ref() } {
        if c.pid == process::pid() {
            return c;
        }
    }
    init()
}

/// The core if it exists for this process, without creating one.
pub fn existing() -> Option<&'static Core> {
    // SAFETY: cores are leaked, never freed.
    unsafe { CORE.load(Ordering::Acquire).as_ref() }.filter(|c| c.pid == process::pid())
}

#[cold]
fn init() -> &'static Core {
    FORK_HANDLERS.call_once(|| {
        // SAFETY: registering plain extern "C" handlers.
        unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
        pin_library();
    });
    let _g = INIT_LOCK.lock();
    if let Some(c) = existing() {
        return c;
    }
    let core: &'static Core = Box::leak(Box::new(Core::new()));
    CORE.store(core as *const Core as *mut Core, Ordering::Release);
    core.start();
    core
}

extern "C" fn fork_prepare() {
    std::mem::forget(INIT_LOCK.lock());
    std::mem::forget(intern::TABLE.lock());
}

extern "C" fn fork_parent() {
    // SAFETY: locked in fork_prepare by this thread.
    unsafe {
        intern::TABLE.force_unlock();
        INIT_LOCK.force_unlock();
    }
}

extern "C" fn fork_child() {
    // SAFETY: locked in fork_prepare by the forking thread, which is this thread in the child.
    unsafe {
        intern::TABLE.force_unlock();
        INIT_LOCK.force_unlock();
    }
    // The parent's core no longer matches our pid: the next call builds a fresh one with its own
    // file set and control thread. Nothing of the parent's mapping is ever written by the child.
    process::refresh_pid();
    crate::device::after_fork_child();
}

/// Keep the library loaded for the life of the process: the control thread runs its code.
fn pin_library() {
    // SAFETY: dladdr/dlopen with valid pointers; RTLD_NOLOAD only bumps the reference count.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(pin_library as *const libc::c_void, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE);
        }
    }
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

impl Core {
    fn new() -> Core {
        let home = home_dir();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let config_path = std::env::var_os("SERVICE_PROF_CONFIG_PATH")
            .filter(|v| !v.is_empty())
            .map(|v| absolute(&cwd, Path::new(&v)))
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p));
        if let (Some(abs), Some(raw)) = (&config_path, std::env::var_os("SERVICE_PROF_CONFIG_PATH")) {
            // Children started from another directory must find the same file.
            if Path::new(&raw).is_relative() {
                std::env::set_var("SERVICE_PROF_CONFIG_PATH", abs);
            }
        }
        let (tail, master) = rundir::service_tail(config_path.as_deref());
        let watch = config_path.as_ref().map(|p| Watch::new(p.clone(), home.clone()));
        Core {
            pid: process::pid(),
            home: home.clone(),
            cwd,
            config_path,
            tail,
            control: Mutex::new(Control { cfg: Config::defaults(&home), enabled: false, started: 0, watch, bad_content: None, last_anchor: 0 }),
            files: Mutex::new(Files { meta: None, next_string: 1, cache: Vec::new(), failed_gen: None }),
            ring: AtomicPtr::new(std::ptr::null_mut()),
            step: AtomicI64::new(0),
            step_target: AtomicI64::new(i64::MAX),
            domain_bits: (0..DOMAIN_BITS / 64).map(|_| AtomicU64::new(0)).collect(),
            hook_errors: AtomicU64::new(0),
            expr_errors: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            thread: Mutex::new(None),
            link_name: AtomicU32::new(0),
            master,
            device: crate::device::Device::default(),
        }
    }

    /// First config read (synchronously, so `enable: 1` at launch is in force when init returns)
    /// and the control thread.
    fn start(&'static self) {
        {
            let mut c = lock(&self.control);
            self.publish_state(&c);
            let Some(path) = self.config_path.clone() else { return };
            self.ensure_config_file(&path);
            self.poll(&mut c);
        }
        let me: &'static Core = self;
        match std::thread::Builder::new().name("msp-control".into()).spawn(move || me.run()) {
            Ok(h) => *lock(&self.thread) = Some(h.thread().clone()),
            Err(e) => log::log(Level::Error, &format!("cannot start the control thread: {e}; config edits will not be seen")),
        }
    }

    /// Whether this process has a config path (the control plane is active).
    pub fn is_controlled(&self) -> bool {
        self.config_path.is_some()
    }

    fn ensure_config_file(&self, path: &Path) {
        if std::fs::symlink_metadata(path).is_ok() {
            return;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            log::once(Level::Warning, "cfg-ext", &format!("SERVICE_PROF_CONFIG_PATH={} does not end in .json; no default file is created", path.display()));
            return;
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        use std::os::unix::fs::MetadataExt;
        let owned = std::fs::metadata(parent).map(|m| m.uid() == unsafe { libc::getuid() }).unwrap_or(false);
        let c = std::ffi::CString::new(parent.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: valid C string.
        let writable = unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0;
        if !owned || !writable {
            log::once(
                Level::Warning,
                "cfg-dir",
                &format!(
                    "{} is missing and {} is not a directory owned and writable by this user; no default file is created",
                    path.display(),
                    parent.display()
                ),
            );
            return;
        }
        match fs::create_if_absent(path, config::default_file_text(&self.home).as_bytes()) {
            Ok(true) => log::log(Level::Info, &format!("created default config {} (\"enable\": 0)", path.display())),
            Ok(false) => {}
            Err(e) => {
                log::once(Level::Warning, "cfg-create", &format!("cannot create {}: {e}", path.display()));
            }
        }
    }

    fn run(&'static self) {
        let acl_prof = lock(&self.control).cfg.acl_task_time == 1;
        crate::device::on_control_start(acl_prof);
        while !self.shutdown.load(Ordering::Acquire) && self.pid == process::pid() {
            self.tick();
            self.device.tick(self, false);
            std::thread::park_timeout(TICK);
        }
    }

    /// One control-loop iteration: config edits, limits, ring upkeep, counters, anchors.
    pub fn tick(&self) {
        let mut c = lock(&self.control);
        self.poll(&mut c);
        if c.enabled {
            let limit = c.cfg.timelimit_s as u64 * 1_000_000_000;
            if limit > 0 && monotonic_ns().saturating_sub(c.started) >= limit {
                self.auto_stop(&mut c, Reason::TimeLimit);
            } else if self.step.load(Ordering::Relaxed) >= self.step_target.load(Ordering::Relaxed) {
                self.auto_stop(&mut c, Reason::StepLimit);
            }
        }
        drop(c);
        if let Some(r) = self.ring_if_open() {
            r.maintain();
            r.publish();
            let k = r.counters();
            k.get(Counter::HookErrors).store(self.hook_errors.load(Ordering::Relaxed), Ordering::Relaxed);
            k.get(Counter::ExprErrors).store(self.expr_errors.load(Ordering::Relaxed), Ordering::Relaxed);
            k.get(Counter::Strings).store(intern::len() as u64, Ordering::Relaxed);
            let now = monotonic_ns();
            let mut c = lock(&self.control);
            if now.saturating_sub(c.last_anchor) >= ANCHOR_EVERY_NS {
                c.last_anchor = now;
                drop(c);
                if let Some(m) = lock(&self.files).meta.as_mut() {
                    let _ = m.anchor(Anchor::now());
                }
            }
        }
    }

    fn poll(&self, c: &mut Control) {
        let Some(change) = c.watch.as_mut().and_then(|w| w.poll()) else { return };
        let path = self.config_path.as_deref().unwrap_or(Path::new("")).display().to_string();
        match change {
            Change::Config(cfg, warnings) => {
                for w in warnings {
                    let msg = format!("{path}: {w}");
                    log::once(Level::Warning, &msg, &msg);
                }
                c.bad_content = None;
                match (cfg.enable, c.enabled) {
                    (true, false) => {
                        c.cfg = cfg;
                        self.set_enabled(c, true, Reason::Config);
                    }
                    (false, true) => {
                        c.cfg = cfg;
                        self.set_enabled(c, false, Reason::Config);
                    }
                    (false, false) => {
                        c.cfg = cfg;
                        self.publish_state(c);
                    }
                    // While capturing, only `enable` is read (as in the reference); every field
                    // is re-read at the next 0 → 1 transition.
                    (true, true) => {}
                }
            }
            Change::Invalid(e, h) => {
                if c.bad_content != Some(h) {
                    c.bad_content = Some(h);
                    let state = if c.enabled { "on" } else { "off" };
                    log::log(Level::Warning, &format!("{path}: {e}; keeping the current state (capture {state})"));
                }
            }
            Change::Unreadable(msg) => {
                log::once(Level::Warning, &msg, &format!("{msg}; keeping the current state"));
            }
        }
    }

    fn auto_stop(&self, c: &mut Control, reason: Reason) {
        self.set_enabled(c, false, reason);
        c.cfg.enable = false;
        let Some(w) = c.watch.as_mut() else { return };
        let res = crate::control::watch::read_config(w.path()).map_err(|e| e.to_string()).and_then(|text| {
            let new = config::set_enable_text(&text, false).ok_or_else(|| "no top-level \"enable\" key".to_string())?;
            fs::replace_atomically(w.path(), new.as_bytes()).map_err(|e| e.to_string())
        });
        match res {
            Ok(()) => w.accept_current(),
            Err(e) => log::log(Level::Warning, &format!("cannot write \"enable\": 0 back to {}: {e}", w.path().display())),
        }
    }

    fn set_enabled(&self, c: &mut Control, on: bool, reason: Reason) {
        let was = c.enabled;
        c.enabled = on;
        if on {
            c.started = monotonic_ns();
            let target = match c.cfg.profiler_step_num {
                Some(n) => self.step.load(Ordering::Relaxed).saturating_add(n.max(0)),
                None => i64::MAX,
            };
            self.step_target.store(target, Ordering::Relaxed);
            self.compute_domain_bits(&c.cfg);
            lock(&self.files).failed_gen = None;
        }
        self.publish_state(c);
        if was != on {
            // Device capture follows host capture; the control thread applies it (outside this lock).
            let run_dir = absolute(&self.cwd, &c.cfg.prof_dir).join(&self.tail);
            self.device.want(if on { crate::device::Plan::new(&c.cfg, run_dir, self.master) } else { None });
            if let Some(t) = lock(&self.thread).as_ref() {
                t.unpark();
            }
            log::log(Level::Info, &format!("capture {} ({reason:?})", if on { "started" } else { "stopped" }));
            if let Some(m) = lock(&self.files).meta.as_mut() {
                let _ = m.capture(monotonic_ns(), on, reason);
            }
        }
    }

    fn publish_state(&self, c: &Control) {
        let old = STATE.load(Ordering::Relaxed);
        let gen = (old >> 32).wrapping_add(1);
        let mut w = (gen << 32) | (c.cfg.profiler_level.min(255) as u64) << 8;
        if c.enabled {
            w |= ENABLED;
        }
        w |= old & MSTX;
        if !c.cfg.domains.is_empty() {
            w |= FILTER;
        }
        STATE.store(w, Ordering::Release);
    }

    fn compute_domain_bits(&self, cfg: &Config) {
        let mut words = vec![0u64; DOMAIN_BITS / 64];
        if cfg.domain_allowed("") {
            words[0] |= 1;
        }
        for (id, s) in intern::since(1) {
            if (id as usize) < DOMAIN_BITS && cfg.domain_allowed(&String::from_utf8_lossy(&s)) {
                words[id as usize / 64] |= 1 << (id % 64);
            }
        }
        for (a, w) in self.domain_bits.iter().zip(words) {
            a.store(w, Ordering::Relaxed);
        }
    }

    /// Whether records of interned domain `id` pass the domain filter.
    #[inline(always)]
    pub fn domain_ok(&self, id: u32) -> bool {
        if STATE.load(Ordering::Relaxed) & FILTER == 0 {
            return true;
        }
        if (id as usize) < DOMAIN_BITS {
            return self.domain_bits[id as usize / 64].load(Ordering::Relaxed) & (1 << (id % 64)) != 0;
        }
        self.domain_ok_slow(id)
    }

    #[cold]
    #[inline(never)]
    fn domain_ok_slow(&self, id: u32) -> bool {
        let s = intern::resolve(id).map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or_default();
        lock(&self.control).cfg.domain_allowed(&s)
    }

    /// Whether a record of `level` in `domain` would be kept now.
    #[inline]
    pub fn is_enabled(&self, level: u32, domain: u32) -> bool {
        let w = STATE.load(Ordering::Relaxed);
        w & ENABLED != 0 && level as u64 <= (w >> 8) & 0xff && self.domain_ok(domain)
    }

    /// Intern a string (its definition reaches the meta file if one is open).
    pub fn intern(&self, s: &[u8]) -> u32 {
        let Some((id, new)) = intern::intern(s) else { return 0 };
        if new {
            if (id as usize) < DOMAIN_BITS {
                let c = lock(&self.control);
                if c.cfg.domain_allowed(&String::from_utf8_lossy(s)) {
                    self.domain_bits[id as usize / 64].fetch_or(1 << (id % 64), Ordering::Relaxed);
                }
            }
            let mut f = lock(&self.files);
            Self::flush_strings(&mut f);
        }
        id
    }

    fn flush_strings(f: &mut Files) {
        let Some(m) = f.meta.as_mut() else { return };
        for (id, s) in intern::since(f.next_string) {
            if m.string(id, &s).is_err() {
                return;
            }
            f.next_string = id + 1;
        }
    }

    /// The open ring, if any.
    #[inline]
    pub fn ring_if_open(&self) -> Option<&Ring> {
        // SAFETY: rings are leaked once opened, never freed.
        unsafe { self.ring.load(Ordering::Acquire).as_ref() }
    }

    /// Write one record if capture is on and its domain passes; opens the file set on first use.
    #[inline]
    pub fn record<E: Encode>(&self, spec: &E) -> bool {
        let state = STATE.load(Ordering::Relaxed);
        state & ENABLED != 0 && self.record_with_state(state, spec)
    }

    /// [`record`](Self::record) for a caller that already loaded the state word and found capture on.
    #[inline(always)]
    pub fn record_with_state<E: Encode>(&self, state: u64, spec: &E) -> bool {
        if state & (FILTER | MSTX) != 0 && !self.filter_and_mirror(state, spec.ids()) {
            return false;
        }
        match self.ring_if_open() {
            Some(r) => r.write(spec),
            None => self.open_files().is_some_and(|r| r.write(spec)),
        }
    }

    /// The domain filter (false: drop the record) and the mstx mirror of spans, for a state word
    /// with either bit set.
    #[cold]
    #[inline(never)]
    fn filter_and_mirror(&self, state: u64, (kind, domain, name): (crate::record::Kind, u32, u32)) -> bool {
        if state & FILTER != 0 && !self.domain_ok(domain) {
            return false;
        }
        if state & MSTX != 0 && kind == crate::record::Kind::Span {
            crate::device::mstx::mirror(domain, name);
        }
        true
    }

    /// Write a record of the device path (docs/FORMAT.md "Device records") with thread id `tid`,
    /// whatever the capture state and domain filter: device activities and usage samples belong
    /// to the capture window they were collected in, and may be delivered after it closed.
    pub fn record_device<E: Encode>(&self, spec: &E, tid: u32) -> bool {
        match self.ring_if_open() {
            Some(r) => r.write_as(spec, Some(tid)),
            None => self.open_files().is_some_and(|r| r.write_as(spec, Some(tid))),
        }
    }

    /// `<prof_dir>/<MMDD-HHMM>` for the current config.
    pub fn run_dir(&self) -> PathBuf {
        let c = lock(&self.control);
        absolute(&self.cwd, &c.cfg.prof_dir).join(&self.tail)
    }

    #[cold]
    fn open_files(&self) -> Option<&Ring> {
        let (run_dir, ring_cfg) = {
            let c = lock(&self.control);
            (absolute(&self.cwd, &c.cfg.prof_dir), c.cfg.ring.clone())
        };
        let gen = STATE.load(Ordering::Relaxed) >> 32;
        let mut f = lock(&self.files);
        if let Some(r) = self.ring_if_open() {
            return Some(r);
        }
        if f.failed_gen.is_some() {
            Self::count_unkept(&f);
            return None;
        }
        let geo = Geometry {
            segment_bytes: ring_cfg.segment_bytes,
            total_bytes: ring_cfg.total_bytes,
            chunk_bytes: ring_cfg.chunk_bytes as usize,
            overwrite: ring_cfg.policy == FullPolicy::Overwrite,
        };
        match self.create_file_set(&run_dir, geo, &mut f) {
            Ok(ring) => {
                let r: &'static Ring = Box::leak(Box::new(ring));
                if let Some(t) = lock(&self.thread).as_ref() {
                    r.set_maintainer(t.clone());
                }
                self.ring.store(r as *const Ring as *mut Ring, Ordering::Release);
                Some(r)
            }
            Err(e) => {
                f.failed_gen = Some(gen);
                if let Some(m) = &f.meta {
                    m.counters().set_write_failed(e.raw_os_error().unwrap_or(0));
                }
                Self::count_unkept(&f);
                log::log(
                    Level::Error,
                    &format!("cannot open capture files under {}: {e}; records are not kept until capture is re-enabled", run_dir.display()),
                );
                None
            }
        }
    }

    /// A record not kept because the file set could not be opened: counted as dropped in the
    /// meta file, when that much exists.
    fn count_unkept(f: &Files) {
        if let Some(m) = &f.meta {
            m.counters().get(Counter::Dropped).fetch_add(1, Ordering::Relaxed);
        }
    }

    fn create_file_set(&self, prof_dir: &Path, geo: Geometry, f: &mut Files) -> std::io::Result<Ring> {
        let dir = Dir::create_all(prof_dir)?.subdir(&self.tail)?.subdir(TRACE_DIR)?;
        let host = process::hostname_for_files();
        let base = format!("ms_service_{host}-{}", self.pid);
        let mut info = ProcessInfo {
            pid: self.pid,
            ppid: process::ppid(),
            hostname: process::hostname(),
            stem: String::new(),
            anchor: Anchor::now(),
            utc_offset_s: crate::clock::utc_offset_s(),
        };
        // The meta file appears with its header written (a live reader never sees it empty).
        let file = (0..1000)
            .find_map(|n| {
                info.stem = if n == 0 { base.clone() } else { format!("{base}-{n}") };
                match dir.create_new_with(&format!("{}.meta", info.stem), |f| MetaFile::write_header(f, &info)) {
                    Ok(file) => Some(Ok(file)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .unwrap_or_else(|| Err(std::io::Error::other("no free file-set name")))?;
        let stem = info.stem.clone();
        let mut meta = MetaFile::open(file)?;
        for (k, v) in [("hostname", info.hostname.clone()), ("pid", self.pid.to_string()), ("ppid", info.ppid.to_string())] {
            meta.meta(k.as_bytes(), v.as_bytes())?;
        }
        for (k, v) in &f.cache {
            meta.meta(k, v)?;
        }
        if STATE.load(Ordering::Relaxed) & ENABLED != 0 {
            meta.capture(monotonic_ns(), true, Reason::Config)?;
        }
        let counters = meta.counters().clone();
        f.meta = Some(meta);
        f.next_string = 1;
        Self::flush_strings(f);
        let ring = Ring::open(dir, stem.clone(), geo, counters)?;
        log::log(Level::Info, &format!("capturing into {}/{stem}.*", ring.dir().path().display()));
        Ok(ring)
    }

    /// Record process meta info (cached, and written to every file set this process opens).
    pub fn meta(&self, key: &[u8], value: &[u8]) {
        let mut f = lock(&self.files);
        match f.cache.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) if v == value => return,
            Some((_, v)) => *v = value.to_vec(),
            None => f.cache.push((key.to_vec(), value.to_vec())),
        }
        if let Some(m) = f.meta.as_mut() {
            let _ = m.meta(key, value);
        }
    }

    /// Start (`true`) or stop capture by API; stands until the next edit of the config file.
    pub fn api_capture(&self, on: bool) {
        if self.shutdown.load(Ordering::Acquire) {
            return;
        }
        let mut c = lock(&self.control);
        if on && !self.is_controlled() {
            c.cfg.enable = true;
        }
        self.set_enabled(&mut c, on, Reason::Api);
    }

    /// Set the framework step counter (drives `profiler_step_num`).
    #[inline]
    pub fn set_step(&self, step: i64) {
        self.step.store(step, Ordering::Relaxed);
        if step >= self.step_target.load(Ordering::Relaxed) && STATE.load(Ordering::Relaxed) & ENABLED != 0 {
            // Stop recording at once; the control thread does the bookkeeping and write-back.
            STATE.fetch_and(!ENABLED, Ordering::AcqRel);
            if let Some(t) = lock(&self.thread).as_ref() {
                t.unpark();
            }
        }
    }

    /// The framework step counter.
    pub fn step(&self) -> i64 {
        self.step.load(Ordering::Relaxed)
    }

    /// Count errors reported by the Python shim (1 hook, 2 expression).
    pub fn count_error(&self, kind: u32, n: u64) {
        match kind {
            1 => self.hook_errors.fetch_add(n, Ordering::Relaxed),
            _ => self.expr_errors.fetch_add(n, Ordering::Relaxed),
        };
    }

    /// The interned id of "Link".
    pub fn link_name(&self) -> u32 {
        let id = self.link_name.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        let id = self.intern(b"Link");
        self.link_name.store(id, Ordering::Relaxed);
        id
    }

    /// Current totals.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            strings: intern::len() as u64,
            hook_errors: self.hook_errors.load(Ordering::Relaxed),
            expr_errors: self.expr_errors.load(Ordering::Relaxed),
            ..Totals::default()
        };
        if let Some(r) = self.ring_if_open() {
            (t.written, t.bytes) = r.publish();
            let k = r.counters();
            t.dropped = k.get(Counter::Dropped).load(Ordering::Relaxed);
            t.overwritten = k.get(Counter::Overwritten).load(Ordering::Relaxed);
            t.oversize = k.get(Counter::Oversize).load(Ordering::Relaxed);
            t.segments = k.get(Counter::Segments).load(Ordering::Relaxed);
        }
        t
    }

    /// The effective config as JSON, with the live capture state and run directory.
    pub fn config_json(&self) -> String {
        let run_dir = self.run_dir();
        let c = lock(&self.control);
        let mut v: serde_json::Value = serde_json::from_str(&c.cfg.to_json()).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("capturing".into(), c.enabled.into());
            o.insert("run_dir".into(), run_dir.to_string_lossy().into());
            o.insert("config_path".into(), self.config_path.as_ref().map(|p| p.to_string_lossy().into_owned()).into());
        }
        v.to_string()
    }

    /// Flush and close: stop capture, publish counters, mark the file set cleanly shut down.
    pub fn shutdown(&'static self) {
        if self.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut c = lock(&self.control);
            if c.enabled {
                self.set_enabled(&mut c, false, Reason::Shutdown);
            }
        }
        // Stop device capture and write what it still holds, before the files are closed.
        self.device.tick(self, true);
        if let Some(r) = self.ring_if_open() {
            r.release_thread();
            r.publish();
            let k = r.counters();
            k.get(Counter::HookErrors).store(self.hook_errors.load(Ordering::Relaxed), Ordering::Relaxed);
            k.get(Counter::ExprErrors).store(self.expr_errors.load(Ordering::Relaxed), Ordering::Relaxed);
            k.get(Counter::Strings).store(intern::len() as u64, Ordering::Relaxed);
            k.set_clean(true);
        }
        if let Some(t) = lock(&self.thread).as_ref() {
            t.unpark();
        }
    }
}
