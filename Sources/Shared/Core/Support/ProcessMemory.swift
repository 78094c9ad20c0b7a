import CMalloc

/// glibc's allocator, tuned for a worker whose memory is a few buffers per job in flight (measured with
/// `bench/run.sh mix`: peak RSS at --concurrency 16 from 101–113 MiB to about 76 MiB, CPU unchanged):
/// - at most two arenas: by default every thread that allocates gets one of up to 8 × cores, and each keeps the
///   freed page and TSV buffers of the jobs that ran on it;
/// - a fixed mmap threshold of 256 KiB: by default the threshold rises to the largest block freed so far (up to
///   32 MiB), after which every page buffer comes from an arena and fragments it instead of going back to the
///   system when the job ends.
package enum ProcessMemory {
    package static func tuneAllocator() {
        _ = mallopt(M_ARENA_MAX, 2)
        _ = mallopt(M_MMAP_THRESHOLD, 256 << 10)
    }
}
