//! Returning freed heap to the OS between the parse phases. Each part is read on a worker
//! thread, so its model data lives in that thread's malloc arena; once merged (and dropped) on
//! the main thread, glibc keeps those pages mapped in the worker arenas, where the main thread's
//! later allocations cannot reuse them. `malloc_trim` releases them, lowering the peak RSS.

/// Release free heap pages of every malloc arena (glibc only; a no-op elsewhere).
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
