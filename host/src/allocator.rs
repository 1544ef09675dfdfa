//! How the process hands freed memory back to the kernel.
//!
//! glibc's malloc raises its mmap threshold to the size of the largest block it
//! has freed (up to 32 MiB) and its trim threshold to twice that. After one large
//! body, say the 16 MiB response a guest may write, blocks of that size come from
//! the arenas instead of their own mappings, and each arena keeps up to 32 MiB of
//! freed memory resident for the rest of the process: a soak of faulty guests left
//! the host up to 65 MiB larger than before it, varying with how the frees fell.
//! Wisp pins both thresholds at glibc's starting values, so that a block of
//! 128 KiB or more is mapped and unmapped on its own and an arena's free top past
//! 128 KiB goes back to the kernel. The price is on bodies that large only: their
//! memory is fresh each time, faulted in page by page (on a 2-core VM about 0.5 ms
//! per MiB). Serving small requests and fanning out messages allocates nothing that
//! size (docs/reliability.md, "Memory after large bodies").
//!
//! The trim threshold only reaches an arena's free top. Many small blocks freed
//! together, as when a crowd of idle connections closes (each held its task and
//! hyper's 8 KiB read buffer), leave free pages between blocks still in use, which
//! stay resident until [`give_back_free_pages`] hands them back.

/// Pins the allocator's thresholds (see the module's doc). Call it before the work
/// starts (again changes nothing): `wisp serve` does, and so do the end-to-end
/// tests' servers.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: libc::c_int = 128 << 10;
        // SAFETY: mallopt only changes malloc's tuning parameters; it is
        // thread-safe and touches no allocation.
        let pinned = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD) == 1
        };
        if !pinned {
            tracing::warn!("could not pin malloc's thresholds; freed memory may stay resident");
        }
    }
}

/// Hands every free page inside the allocator's arenas back to the kernel
/// (glibc's `malloc_trim(0)`), not only an arena's top. It walks each arena under
/// that arena's lock, so it is for now and then, after a crowd has gone (the
/// server calls it once the open-connection count has fallen back from a peak),
/// never per request.
pub fn give_back_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory to the kernel; it is
        // thread-safe and leaves every allocation as it is.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
