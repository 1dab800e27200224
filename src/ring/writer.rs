//! The lock-free multi-writer ring. Each thread owns one chunk at a time and appends records to
//! it with plain stores, committing each record by a Release store of its header; claiming a
//! chunk is one atomic `fetch_add`. When the segment is used up: policy `drop` moves on to the
//! next segment (pre-created in the background) until the per-process budget is reached and then
//! drops and counts; policy `overwrite` recycles the oldest closed chunk and counts the records it
//! held. Nothing ever waits.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};

use super::segment::{chunk_at, Segment, CHUNK_HEADER, SEQ_BUSY};
use crate::files::fs::Dir;
use crate::files::meta::{Counter, Counters};
use crate::record::Encode;

/// Ring sizing and policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per segment file.
    pub segment_bytes: u64,
    /// Maximum bytes across all segments of the process (drop policy).
    pub total_bytes: u64,
    /// Bytes per chunk; the largest record is `chunk_bytes - 64`.
    pub chunk_bytes: usize,
    /// Recycle the oldest chunks instead of dropping new records (a single segment).
    pub overwrite: bool,
}

/// Per-thread published totals.
#[derive(Default)]
struct ThreadStats {
    written: AtomicU64,
    bytes: AtomicU64,
}

static NEXT_RING_ID: AtomicU64 = AtomicU64::new(1);
/// Records go to fresh memory: ask for the cache line a few records ahead while writing this one.
const PREFETCH_AHEAD: usize = 512;

#[inline(always)]
fn prefetch(p: *const u8) {
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
/// Fraction of the current segment handed out at which a spare is prepared.
const SPARE_AT: f64 = 0.25;
/// How far ahead of the writers the control thread faults pages in (per 50 ms tick).
const PREFAULT_BYTES: usize = 32 << 20;
/// Page-faulting is done in slices of this many bytes, checking for the spare in between.
const PREFAULT_SLICE: usize = 4 << 20;
/// Writers wake the control thread every this many chunk claims.
const WAKE_EVERY: usize = 64;

/// A process's ring: the segments of one file set.
pub struct Ring {
    id: u64,
    pid: u32,
    dir: Dir,
    stem: String,
    geo: Geometry,
    current: ArcSwap<Segment>,
    next: ArcSwapOption<Segment>,
    rolling: AtomicBool,
    creating_inline: AtomicBool,
    exhausted: AtomicBool,
    segments: AtomicU32,
    next_index: AtomicU32,
    prefault: AtomicBool,
    waker: ArcSwapOption<std::thread::Thread>,
    seq: AtomicU64,
    counters: Counters,
    threads: Mutex<Vec<Arc<ThreadStats>>>,
}

struct Slot {
    ring: u64,
    pid: u32,
    tid: u32,
    seg: Option<Arc<Segment>>,
    chunk: usize,
    base: *mut u8,
    pos: usize,
    end: usize,
    /// The thread's `written` count when the owned chunk was claimed.
    chunk_first: u64,
    /// Non-null once `stats` is set: the record path's unchecked view of it.
    stats_ptr: *const ThreadStats,
    stats: Option<Arc<ThreadStats>>,
}

impl Slot {
    const fn empty() -> Slot {
        Slot {
            ring: 0,
            pid: 0,
            tid: 0,
            seg: None,
            chunk: 0,
            base: std::ptr::null_mut(),
            pos: 0,
            end: 0,
            chunk_first: 0,
            stats_ptr: std::ptr::null(),
            stats: None,
        }
    }

    /// Publish how much of the owned chunk is committed and give it up.
    fn close(&mut self) {
        if let Some(seg) = self.seg.take() {
            // Never touch a parent's mapping from a forked child.
            if self.pid == crate::process::pid() {
                let records = self.stats.as_ref().map_or(0, |st| st.written.load(Ordering::Relaxed) - self.chunk_first);
                seg.word(self.chunk, chunk_at::CLOSED_RECORDS).store(records, Ordering::Relaxed);
                seg.word(self.chunk, chunk_at::CLOSED_BYTES).store(self.pos as u64, Ordering::Release);
            }
        }
        self.base = std::ptr::null_mut();
        self.pos = 0;
        self.end = 0;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.close();
    }
}

thread_local! {
    static SLOT: RefCell<Slot> = const { RefCell::new(Slot::empty()) };
}

impl Ring {
    /// Create the first segment of file set `stem` in `dir`.
    pub fn open(dir: Dir, stem: String, geo: Geometry, counters: Counters) -> io::Result<Ring> {
        let pid = crate::process::pid();
        let first = Segment::create(&dir, &stem, 0, geo.segment_bytes, geo.chunk_bytes, geo.overwrite, pid)?;
        counters.get(Counter::Segments).store(1, Ordering::Relaxed);
        Ok(Ring {
            id: NEXT_RING_ID.fetch_add(1, Ordering::Relaxed),
            pid,
            dir,
            stem,
            geo,
            current: ArcSwap::from_pointee(first),
            next: ArcSwapOption::empty(),
            rolling: AtomicBool::new(false),
            creating_inline: AtomicBool::new(false),
            exhausted: AtomicBool::new(false),
            segments: AtomicU32::new(1),
            next_index: AtomicU32::new(1),
            prefault: AtomicBool::new(true),
            waker: ArcSwapOption::empty(),
            seq: AtomicU64::new(1),
            counters,
            threads: Mutex::new(Vec::new()),
        })
    }

    /// The largest record that fits in a chunk.
    pub fn max_record(&self) -> usize {
        self.geo.chunk_bytes - CHUNK_HEADER
    }

    /// The live counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Append one record. Returns false if it was dropped (and counted).
    #[inline]
    pub fn write<E: Encode>(&self, spec: &E) -> bool {
        self.write_as(spec, None)
    }

    /// [`write`](Self::write), storing `tid` (when given) as the record's thread id instead of the
    /// calling thread's (device records carry the thread or stream they describe).
    #[inline(always)]
    pub fn write_as<E: Encode>(&self, spec: &E, tid: Option<u32>) -> bool {
        let sized = match spec.encoded_size() {
            Some(s) if s.bytes <= self.max_record() => s,
            _ => {
                self.counters.get(Counter::Oversize).fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        // Only the slot's address comes out of the TLS closure: that closure is trivially inlined,
        // and the record path below stays in the caller (a big closure made LLVM outline
        // `LocalKey::try_with` with everything in it). The slot lives until this thread exits,
        // which cannot happen during this call.
        let ok = match SLOT.try_with(|cell| cell as *const RefCell<Slot>) {
            // SAFETY: see above; the RefCell still guards against re-entrant use.
            Ok(cell) => self.write_slot(unsafe { &*cell }, spec, sized, tid),
            Err(_) => false,
        };
        if !ok {
            self.counters.get(Counter::Dropped).fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    #[inline(always)]
    fn write_slot<E: Encode>(&self, cell: &RefCell<Slot>, spec: &E, sized: crate::record::Sized, tid: Option<u32>) -> bool {
        let Ok(mut s) = cell.try_borrow_mut() else { return false };
        let size = sized.bytes;
        if (s.ring != self.id || s.pos + size > s.end) && !self.refill(&mut s) {
            return false;
        }
        // SAFETY: [pos, pos+size) lies inside the chunk this thread exclusively owns.
        unsafe { spec.encode_into(s.base.add(s.pos), sized, tid.unwrap_or(s.tid)) };
        prefetch(s.base.wrapping_add(s.pos + PREFETCH_AHEAD));
        s.pos += size;
        // SAFETY: set by `refill` together with `stats`, which keeps it alive; the slot belongs to
        // this ring (checked above), so refill ran. Only this thread stores to its stats.
        let st = unsafe { &*s.stats_ptr };
        st.written.store(st.written.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        st.bytes.store(st.bytes.load(Ordering::Relaxed) + size as u64, Ordering::Relaxed);
        true
    }

    #[cold]
    fn refill(&self, s: &mut Slot) -> bool {
        s.close();
        if s.ring != self.id || s.pid != self.pid {
            let stats = Arc::new(ThreadStats::default());
            if let Ok(mut t) = self.threads.lock() {
                t.push(stats.clone());
            }
            s.ring = self.id;
            s.pid = self.pid;
            s.tid = crate::process::tid();
            s.stats_ptr = Arc::as_ptr(&stats);
            s.stats = Some(stats);
        }
        loop {
            let seg = self.current.load_full();
            let n = seg.cursor.fetch_add(1, Ordering::Relaxed) as usize;
            if n < seg.chunk_count {
                // Let the control thread keep pages faulted in ahead and the spare ready.
                if n % WAKE_EVERY == WAKE_EVERY - 1 || (n == (seg.chunk_count as f64 * SPARE_AT) as usize && !self.geo.overwrite) {
                    self.wake();
                }
                seg.open_chunk(n, self.seq.fetch_add(1, Ordering::Relaxed), s.tid);
                return self.take(s, seg, n);
            }
            if self.geo.overwrite {
                return self.recycle(s, seg);
            }
            if !self.roll(&seg) {
                return false;
            }
        }
    }

    fn take(&self, s: &mut Slot, seg: Arc<Segment>, n: usize) -> bool {
        s.base = seg.chunk(n);
        s.chunk = n;
        s.pos = CHUNK_HEADER;
        s.end = seg.chunk_bytes;
        s.chunk_first = s.stats.as_ref().map_or(0, |st| st.written.load(Ordering::Relaxed));
        s.seg = Some(seg);
        true
    }

    /// Overwrite policy: recycle the next closed chunk in claim order.
    fn recycle(&self, s: &mut Slot, seg: Arc<Segment>) -> bool {
        for _ in 0..seg.chunk_count {
            let n = (seg.cursor.fetch_add(1, Ordering::Relaxed) % seg.chunk_count as u64) as usize;
            if seg.word(n, chunk_at::CLOSED_BYTES).load(Ordering::Acquire) == 0 {
                continue; // owned by a writer
            }
            let seq = seg.word(n, chunk_at::SEQ);
            let old = seq.load(Ordering::Acquire);
            if old == SEQ_BUSY || seq.compare_exchange(old, SEQ_BUSY, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            let lost = seg.word(n, chunk_at::CLOSED_RECORDS).load(Ordering::Relaxed);
            self.counters.get(Counter::Overwritten).fetch_add(lost, Ordering::Relaxed);
            // SAFETY: we own the chunk (BUSY); zero its records area.
            unsafe { std::ptr::write_bytes(seg.chunk(n).add(CHUNK_HEADER), 0, seg.chunk_bytes - CHUNK_HEADER) };
            seg.open_chunk(n, self.seq.fetch_add(1, Ordering::Relaxed), s.tid);
            return self.take(s, seg, n);
        }
        false
    }

    fn max_segments(&self) -> u32 {
        (self.geo.total_bytes / self.geo.segment_bytes.max(1)).clamp(1, u32::MAX as u64) as u32
    }

    /// Drop policy: move to the next segment. Returns false when the caller must drop.
    fn roll(&self, seg: &Arc<Segment>) -> bool {
        for _ in 0..10_000 {
            if !Arc::ptr_eq(&self.current.load(), seg) {
                return true; // somebody already rolled
            }
            if self.rolling.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
                // Another writer is swapping in the spare (a few ns): retry. If it is creating a
                // segment itself (no spare), drop rather than wait.
                if self.next.load().is_some() || !self.creating_inline.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                    continue;
                }
                return false;
            }
            let ok = if !Arc::ptr_eq(&self.current.load(), seg) {
                true
            } else if let Some(next) = self.next.swap(None) {
                self.current.store(next);
                self.wake();
                true
            } else {
                self.creating_inline.store(true, Ordering::Relaxed);
                let made = self.create_segment().map(|n| self.current.store(n)).is_some();
                self.creating_inline.store(false, Ordering::Relaxed);
                self.wake();
                made
            };
            self.rolling.store(false, Ordering::Release);
            return ok;
        }
        false
    }

    fn wake(&self) {
        if let Some(t) = self.waker.load().as_ref() {
            t.unpark();
        }
    }

    /// Register the thread that runs [`maintain`](Self::maintain), woken when a spare segment
    /// is needed soon.
    pub fn set_maintainer(&self, t: std::thread::Thread) {
        self.waker.store(Some(Arc::new(t)));
    }

    fn create_segment(&self) -> Option<Arc<Segment>> {
        if self.exhausted.load(Ordering::Relaxed) {
            return None;
        }
        if self.segments.fetch_add(1, Ordering::Relaxed) >= self.max_segments() {
            self.segments.fetch_sub(1, Ordering::Relaxed);
            self.exhausted.store(true, Ordering::Relaxed);
            crate::log::once(
                crate::log::Level::Warning,
                "ring-budget",
                &format!("ring budget of {} bytes used up; further records are dropped and counted", self.geo.total_bytes),
            );
            return None;
        }
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        match Segment::create(&self.dir, &self.stem, index, self.geo.segment_bytes, self.geo.chunk_bytes, false, self.pid) {
            Ok(s) => {
                self.counters.get(Counter::Segments).fetch_add(1, Ordering::Relaxed);
                Some(Arc::new(s))
            }
            Err(e) => {
                self.exhausted.store(true, Ordering::Relaxed);
                self.counters.set_write_failed(e.raw_os_error().unwrap_or(0));
                crate::log::once(
                    crate::log::Level::Error,
                    "ring-segment",
                    &format!("cannot create ring segment {index}: {e}; further records are dropped and counted"),
                );
                None
            }
        }
    }

    /// Background upkeep (the control thread): fault in the pages writers will use next, and
    /// keep a spare segment ready once the current one is a quarter used, so writers neither take
    /// page faults in steady state nor ever create files themselves.
    pub fn maintain(&self) {
        let cur = self.current.load_full();
        let slice = (PREFAULT_SLICE / self.geo.chunk_bytes).max(1);
        let ahead = (PREFAULT_BYTES / self.geo.chunk_bytes).max(1);
        loop {
            // The spare comes first, and is rechecked between slices of page-faulting: a writer
            // that runs out of segment without a spare drops records.
            self.ensure_spare(&cur);
            if !self.prefault.load(Ordering::Relaxed) {
                return;
            }
            let next_chunk = (cur.cursor.load(Ordering::Relaxed) as usize).min(cur.chunk_count);
            let target = (next_chunk + ahead).min(cur.chunk_count);
            let done = cur.populated();
            if done >= target {
                break;
            }
            // Populating never changes contents, so it is safe while writers use the pages.
            if !cur.populate((done + slice).min(target)) {
                self.prefault.store(false, Ordering::Relaxed); // kernel without MADV_POPULATE_WRITE
                return;
            }
        }
        if let Some(n) = self.next.load_full() {
            n.populate(slice);
        }
    }

    fn ensure_spare(&self, cur: &Segment) {
        if !self.geo.overwrite && self.next.load().is_none() && !self.exhausted.load(Ordering::Relaxed) && cur.used() >= SPARE_AT {
            if let Some(n) = self.create_segment() {
                self.next.store(Some(n));
            }
        }
    }

    /// Totals of committed records and bytes across threads; also published into the meta header.
    pub fn publish(&self) -> (u64, u64) {
        let (mut w, mut b) = (0, 0);
        if let Ok(t) = self.threads.lock() {
            for s in t.iter() {
                w += s.written.load(Ordering::Relaxed);
                b += s.bytes.load(Ordering::Relaxed);
            }
        }
        self.counters.get(Counter::Written).store(w, Ordering::Relaxed);
        self.counters.get(Counter::Bytes).store(b, Ordering::Relaxed);
        (w, b)
    }

    /// Give up the calling thread's chunk (e.g. at shutdown), publishing its committed length.
    pub fn release_thread(&self) {
        let _ = SLOT.try_with(|c| {
            if let Ok(mut s) = c.try_borrow_mut() {
                if s.ring == self.id {
                    s.close();
                }
            }
        });
    }

    /// The directory holding the file set.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The file-set stem.
    pub fn stem(&self) -> &str {
        &self.stem
    }
}
