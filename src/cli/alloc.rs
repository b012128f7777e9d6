//! The allocator tuned per command: restore and copy give their big buffers back to the system, so their peak memory does not grow with the amount they move.

/// From here on, buffers of 1 MiB or more are mappings of their own, unmapped when freed.
///
/// Why: glibc raises its mmap threshold to the size of the largest buffer freed so far, so
/// after the first few fetched ranges (up to 4 MiB each) every later one comes from the heap
/// arenas, and the threads of a restore (fetching, opening, writing) free them in each
/// other's arenas, which fragments them. Measured on 2026-12-07: a local restore of 3.2 GB
/// peaked at 120-130 MiB without this and 112-114 MiB with it (4% more time), and restores
/// from Garage of the 1.6 GB bench store at 98-120 MiB, against 125-134 before. Not for
/// snapshots: their sealed blobs are small and short-lived, and faulting in a fresh mapping
/// for each segment cost them 40% more CPU.
pub fn return_big_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets one of glibc's allocator tunables; any value is valid, and a
    // refused one (it returns 0) leaves the default in place, which is only slower to give
    // memory back.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
