// Work splitting over the machine's cores for large elementwise kernels.
#if canImport(Glibc)
import Glibc
#endif
import COpenBLAS

#if canImport(Glibc)
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

public enum Parallel {
    /// Threads our own kernels use: the configured count, or one inside a job of `onCores` (the other
    /// cores run the other jobs). BLAS gets the same number.
    @inline(__always)
    public static var threadCount: Int { CoreWorker.current == nil ? configuredThreadCount : 1 }

    /// The thread count set by `configure` (the machine's cores by default).
    nonisolated(unsafe) public private(set) static var configuredThreadCount: Int = defaultThreadCount()

    static func defaultThreadCount() -> Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    /// Sets the thread count for our kernels and OpenBLAS alike.
    public static func configure(threads: Int) {
        configuredThreadCount = max(1, threads)
        openblas_set_num_threads(Int32(configuredThreadCount))
        keepFreedMemory()
    }

    /// Activations are allocated and freed every step. By default glibc serves such large blocks with
    /// fresh mmaps (and trims the heap), so every step pays page faults and kernel page clearing;
    /// keeping freed blocks in the heap removes that cost.
    public static func keepFreedMemory() {
        #if canImport(Glibc)
        _ = glibcMallopt(-3, 1 << 30)          // M_MMAP_THRESHOLD (malloc.h is not in the Glibc module)
        _ = glibcMallopt(-1, Int32.max)        // M_TRIM_THRESHOLD
        // One arena for every thread: the pieces of a batch (CoreShards) allocate on other threads, whose own
        // arenas would hand their freed blocks back to the kernel (a unet-s step took 13,000 page faults and
        // ran up to 1.6x slower in stretches).
        _ = glibcMallopt(-8, 1)                // M_ARENA_MAX
        #endif
    }

    /// Runs `body` with OpenBLAS on one thread, so that each of our own threads can call `gemm` on its own
    /// block of work (BLAS then runs in the calling thread). Restores `threadCount` BLAS threads after.
    public static func withSerialBLAS<R>(_ body: () -> R) -> R {
        guard threadCount > 1, !blasIsSerial else { return body() }
        openblas_set_num_threads(1)
        blasIsSerial = true
        defer { openblas_set_num_threads(Int32(threadCount)); blasIsSerial = false }
        return body()
    }

    /// True inside `withSerialBLAS` (set and read only by the thread that runs ops).
    nonisolated(unsafe) static var blasIsSerial = false

    /// GEMMs with fewer multiply-adds than this run on one BLAS thread: below it, OpenBLAS's threads
    /// spend more time waking and yielding than computing (seen in the mlp-toy profile).
    public static let serialGEMMWork = 1 << 24

    /// Below this many elements an elementwise loop runs on one thread: waking a second costs more.
    public static let grain = 1 << 15

    /// Runs `body(range)` over `0..<count`, in up to `threadCount` contiguous chunks when the work is large.
    @inline(__always)
    public static func forEachChunk(_ count: Int, minimumPerChunk: Int = grain, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, max(1, count / max(1, minimumPerChunk)))
        if chunks <= 1 { body(0..<count); return }
        ThreadTeam.run(chunks, threads: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            body(lo..<hi)
        }
    }

    /// Runs `body(k, range)` over every index of several arrays of `counts[k]` values, their concatenation split
    /// over the threads once (`range` is local to array k): one wake-up for many small arrays, such as a network's
    /// parameters, instead of one per array.
    @inline(__always)
    public static func forEachSpan(_ counts: [Int], _ body: (Int, Range<Int>) -> Void) {
        var offsets = [0]
        for c in counts { offsets.append(offsets.last! + c) }
        forEachChunk(offsets.last!) { range in
            for k in counts.indices where offsets[k] < range.upperBound && offsets[k + 1] > range.lowerBound {
                body(k, (max(range.lowerBound, offsets[k]) - offsets[k])..<(min(range.upperBound, offsets[k + 1]) - offsets[k]))
            }
        }
    }

    /// Runs `body(i)` for i in 0..<count, spread over the threads (each i is a sizeable job).
    @inline(__always)
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if threadCount <= 1 || count <= 1 { for i in 0..<count { body(i) }; return }
        let chunks = min(threadCount, count)
        ThreadTeam.run(chunks, threads: chunks) { c in
            for i in stride(from: c, to: count, by: chunks) { body(i) }
        }
    }
}
