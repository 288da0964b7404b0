//! Allocator tuning for a proxy's buffer pattern.
//!
//! Frame buffers of up to a few MiB are allocated and freed at line rate.
//! glibc's defaults hand large blocks back to the kernel on free (mmap
//! threshold, heap trimming), so the next frame faults its pages in again:
//! tens of thousands of page faults per GB. Keeping blocks up to 32 MiB in
//! the heap and not trimming below that makes the memory reused instead;
//! peak RSS is unchanged (it is the high-water mark either way). One arena
//! serves every thread: the hot path reuses its buffers instead of
//! allocating, so the arena's lock is rarely taken, while a second arena
//! (the tokio runtime's other worker) kept its own freed buffers resident:
//! tokio's peak RSS on the benchmark's 16 KiB batches was 0.3-0.5 MiB
//! higher with two (issue 16).
//!
//! The cost of that tuning is retention, which [`start_trimmer`] bounds.
//! Measured (issue 15): after rounds of 1,000 connections that each sent a
//! partial request, the tokio runtime's RSS crept from 22 to 70 MB while
//! `malloc_stats()` showed 109 MB of arena memory of which 1.2 MB was in
//! use. Nothing leaked: each connection's 64 KiB receive buffer was freed,
//! but freed memory inside an arena (not at its top, so never trimmed, and
//! split between the two arenas the runtime's threads used then) kept its pages.
//! `malloc_trim(0)` returns the free pages inside every arena to the kernel.

use std::time::Duration;

/// Memory kept in the heap for reuse (mmap threshold, trim threshold, and
/// the free memory the trimmer tolerates).
const KEEP: usize = 32 * 1024 * 1024;

/// How often the trimmer looks at the allocator.
const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Applies the tuning (glibc only; elsewhere the platform allocator stays as is).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let keep = libc::c_int::try_from(KEEP).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, keep);
            libc::mallopt(libc::M_TRIM_THRESHOLD, keep);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Free bytes held inside the allocator's arenas (glibc), for the trimmer.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_in_arenas() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    info.fordblks
}

/// Starts a thread that, every few seconds, gives the free pages inside the
/// allocator's arenas back to the kernel once more than 32 MiB are free, so
/// memory freed after a burst of connections does not stay resident (the
/// buffers of a steady stream, below that, stay cached). Call it after the
/// signal mask is set, so the thread inherits it. glibc only; a no-op
/// elsewhere.
pub fn start_trimmer() -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        std::thread::Builder::new().name("malloc-trim".into()).spawn(|| {
            loop {
                std::thread::sleep(TRIM_INTERVAL);
                if free_in_arenas() > KEEP {
                    // SAFETY: malloc_trim releases free memory; it takes the
                    // arenas' locks itself.
                    unsafe { libc::malloc_trim(0) };
                }
            }
        })?;
    }
    Ok(())
}
