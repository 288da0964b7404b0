//! Allocator tuning for a proxy's buffer pattern.
//!
//! Frame buffers of up to a few MiB are allocated and freed at line rate.
//! glibc's defaults hand large blocks back to the kernel on free (mmap
//! threshold, heap trimming), so the next frame faults its pages in again:
//! tens of thousands of page faults per GB. Keeping blocks up to 32 MiB in
//! the heap and not trimming below that makes the memory reused instead;
//! peak RSS is unchanged (it is the high-water mark either way). Two arenas
//! bound the per-thread arena growth of the multi-threaded runtime.

/// Applies the tuning (glibc only; elsewhere the platform allocator stays as is).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const KEEP: libc::c_int = 32 * 1024 * 1024;
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, KEEP);
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP);
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
