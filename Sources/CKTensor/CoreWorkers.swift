// Independent pieces of work (the shards of a batch) run at once, one core each. Small networks cannot
// use two cores inside an op: a 128x256x256 product takes 0.2 ms, and splitting it or letting OpenBLAS
// thread it spends a large part of that waking threads. A whole forward and backward per core needs one
// wake-up per step.
#if canImport(Glibc)
import Glibc
#endif
import COpenBLAS

/// The state ops read about the thread they run on when it is one of several workers: each records its
/// own graph and runs its kernels serially (the other cores are busy with the other workers).
final class CoreWorker {
    var isRecording = true
    init(isRecording: Bool) { self.isRecording = isRecording }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "CoreWorker: no thread-specific key left")
        return key
    }()

    /// The worker running on this thread, nil outside `Parallel.onCores`.
    @inline(__always)
    static var current: CoreWorker? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<CoreWorker>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Runs `body` on this thread as `self`.
    func run<R>(_ body: () -> R) -> R {
        let previous = pthread_getspecific(Self.key)
        pthread_setspecific(Self.key, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(Self.key, previous) }
        return body()
    }
}

extension Parallel {
    /// True on a thread that runs one of `onCores`'s jobs.
    public static var isCoreWorker: Bool { CoreWorker.current != nil }

    /// Runs `body(i)` for i in 0..<count at once, one job per thread, and returns the results in order.
    /// Each job's ops run serially and record (or not) on their own, starting as the caller records; BLAS
    /// runs single-threaded in each. Jobs must not share mutable state. With one thread, or inside a job,
    /// the jobs run one after the other on the calling thread.
    public static func onCores<R>(_ count: Int, _ body: (Int) -> R) -> [R] {
        guard count > 1, threadCount > 1 else { return (0..<count).map(body) }
        let recording = Tape.isRecording
        var results = [R?](repeating: nil, count: count)
        withSerialBLAS {
            results.withUnsafeMutableBufferPointer { slots in
                ThreadTeam.run(count, threads: threadCount) { i in
                    slots[i] = CoreWorker(isRecording: recording).run { body(i) }
                }
            }
        }
        return results.map { $0! }
    }
}
