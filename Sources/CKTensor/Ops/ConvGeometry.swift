// The convolution's sizes and its scratch buffers (a small pool, so steady-state steps do not allocate).
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import CKWinograd

/// Sizes of one convolution; K = Cin kH kW is the GEMM inner size, P = Ho Wo the positions per sample.
struct ConvGeometry {
    let n, cin, h, w, cout, kh, kw, stride, padding, ho, wo: Int
    var k: Int { cin * kh * kw }
    var p: Int { ho * wo }
    var planeIn: Int { h * w }
    var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && padding == 0 }
    /// Stride 1 with "same" padding: every tap reads the input plane shifted, which im2col copies wholesale.
    var preservesSize: Bool { stride == 1 && ho == h && wo == w }

    init(input: [Int], weight: [Int], stride: Int, padding: Int) {
        (n, cin, h, w) = (input[0], input[1], input[2], input[3])
        (cout, kh, kw) = (weight[0], weight[2], weight[3])
        (self.stride, self.padding) = (stride, padding)
        ho = (h + 2 * padding - kh) / stride + 1
        wo = (w + 2 * padding - kw) / stride + 1
    }

    /// Samples per GEMM: as many as keep the larger chunk buffer within `ConvTuning.chunkFloats`, then
    /// evened out over a number of chunks that the threads share equally.
    var chunkSize: Int {
        let perSample = usesWinograd ? 16 * max(cout, cin) * winogradTiles : max(k, cout, cin) * p
        let budget = usesWinograd ? ConvTuning.winogradChunkFloats : ConvTuning.chunkFloats
        let most = max(1, min(n, budget / max(1, perSample)))
        let threads = Parallel.threadCount
        var chunks = (n + most - 1) / most
        chunks = min(n, (chunks + threads - 1) / threads * threads)
        return max(1, (n + chunks - 1) / max(1, chunks))
    }

    /// Runs `body(chunk)` on the batch chunks. With several threads each thread takes whole chunks and BLAS
    /// runs single-threaded inside them: a core then im2cols into its own L2 and sgemm packs from there, with
    /// no barrier between the steps. Returns the number of workers used.
    @discardableResult
    func forEachChunk(_ body: (ConvChunk) -> Void) -> Int {
        guard n > 0 else { return 0 }
        let chunk = chunkSize, count = (n + chunk - 1) / chunk
        let workers = min(Parallel.threadCount, count)
        let n = n
        func run(_ w: Int) {
            for c in Swift.stride(from: w, to: count, by: workers) {
                body(ConvChunk(worker: w, start: c * chunk, count: min(chunk, n - c * chunk), isFirst: c == w, serial: workers > 1))
            }
        }
        if workers <= 1 { run(0) } else { Parallel.withSerialBLAS { Parallel.forEach(workers) { run($0) } } }
        return workers
    }
}

/// One chunk of the batch as a worker sees it. `serial`: the kernels run on this thread only (the others
/// are busy with their own chunks). `isFirst`: the worker's first chunk, where dW starts from zero.
struct ConvChunk {
    let worker, start, count: Int
    let isFirst, serial: Bool
}

/// Splits `0..<count` over the threads unless the caller is itself one of several workers.
@inline(__always)
func split(_ count: Int, minimumPerChunk: Int, serial: Bool, _ body: (Range<Int>) -> Void) {
    if serial { body(0..<count) } else { Parallel.forEachChunk(count, minimumPerChunk: minimumPerChunk, body) }
}

/// Knobs for the convolution kernels (tests shrink the chunk to exercise chunking).
enum ConvTuning {
    /// Upper bound on the floats of one chunk buffer (columns or gathered outputs): 2 MB, about one core's L2,
    /// where sgemm's packing finds the columns im2col just wrote.
    nonisolated(unsafe) static var chunkFloats = 1 << 19

    /// `always`: F(2x2, 3x3) for every 3x3 stride-1 pad-1 shape; `largeTiles`: F(4x4, 3x3) for all of them;
    /// `auto`: the measured choice per plane size (F(4x4) from 28x28, F(2x2) from 14x14, im2col below).
    enum Winograd: String { case auto, always, largeTiles = "large-tiles", never }
    /// Which 3x3 stride-1 convolutions take a Winograd kernel; CK_CONV_WINOGRAD=always|large-tiles|never
    /// overrides the measured default for A/B timing.
    nonisolated(unsafe) static var winograd: Winograd = {
        guard let raw = getenv("CK_CONV_WINOGRAD") else { return .auto }
        return Winograd(rawValue: String(cString: raw)) ?? .auto
    }()
    /// The chunk bound for the Winograd kernel's transformed input and products.
    /// (Bounds from 64 KB to 1 MB per buffer timed the same; 8 MB was 25% slower.)
    nonisolated(unsafe) static var winogradChunkFloats = 1 << 17
    /// Smallest plane (H W) that takes the Winograd kernel under `.auto`.
    nonisolated(unsafe) static var winogradMinimumPlane = 14 * 14
    /// Smallest plane whose forward pass takes F(4x4, 3x3) under `.auto`.
    nonisolated(unsafe) static var winogradF43MinimumPlane = 28 * 28
    /// Whether the Winograd input and output transforms run CKWinograd's AVX2 versions (where the build has
    /// them) instead of the portable Swift ones; CK_CONV_TRANSFORMS=swift picks the Swift ones for A/B timing,
    /// and the tests run both.
    nonisolated(unsafe) static var nativeTransforms: Bool = {
        guard ck_winograd_available() != 0 else { return false }
        guard let raw = getenv("CK_CONV_TRANSFORMS") else { return true }
        return String(cString: raw) != "swift"
    }()
    /// Whether F(4x4, 3x3)'s input transform and its output transform from channels-last products run their AVX-512
    /// versions (CPUs that have it) rather than the AVX2 ones, which give the same bits; CK_CONV_TRANSFORMS=avx2
    /// picks the AVX2 ones for A/B timing.
    nonisolated(unsafe) static var avx512Transforms: Bool = {
        guard ck_winograd_avx512_available() != 0 else { return false }
        guard let raw = getenv("CK_CONV_TRANSFORMS") else { return true }
        return String(cString: raw) != "avx2"
    }()
}

/// Reusable float buffers for column matrices, so that a training step does not page-fault
/// fresh megabytes for every conv. Locked, so concurrent callers each get their own buffers.
///
/// `zeroed` is a second pool whose buffers are all zero whenever they are in it: a GEMM can then accumulate
/// into one with beta 1, which spares OpenBLAS its separate pass that zeroes C for beta 0. Whoever takes a
/// buffer from it gives it back zeroed (the Winograd output transforms clear what they read, while it is in cache).
final class ConvScratch: @unchecked Sendable {
    static let shared = ConvScratch(zeroed: false)
    static let zeroed = ConvScratch(zeroed: true)
    private let keepsZero: Bool
    private var free: [(UnsafeMutablePointer<Float>, Int)] = []
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    private init(zeroed: Bool) {
        keepsZero = zeroed
        pthread_mutex_init(lock, nil)
    }

    private func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if let i = free.indices.filter({ free[$0].1 >= count }).min(by: { free[$0].1 < free[$1].1 }) {
            return free.remove(at: i)
        }
        if let i = free.indices.min(by: { free[$0].1 < free[$1].1 }) {   // all too small: replace the smallest
            free.remove(at: i).0.deallocate()
        }
        // At least a full chunk, so that layers of different sizes keep reusing the same few buffers.
        let capacity = max(count, keepsZero ? ConvTuning.winogradChunkFloats : ConvTuning.chunkFloats, 1)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
        if keepsZero { buffer.initialize(repeating: 0, count: capacity) }
        return (buffer, capacity)
    }

    private func give(_ buffer: (UnsafeMutablePointer<Float>, Int)) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        free.append(buffer)
        // Up to four per thread: the pieces of a batch (CoreShards) run their convolutions at once.
        if free.count > 4 * Parallel.configuredThreadCount, let i = free.indices.min(by: { free[$0].1 < free[$1].1 }) { free.remove(at: i).0.deallocate() }
    }

    static func with<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let buffer = shared.take(count)
        defer { shared.give(buffer) }
        return body(buffer.0)
    }

    /// A buffer of at least `count` zeros; `body` must leave it all zero again.
    static func withZeroed<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let buffer = zeroed.take(count)
        defer { zeroed.give(buffer) }
        return body(buffer.0)
    }

    static func with<R>(_ a: Int, _ b: Int, _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> R) -> R {
        let ba = shared.take(a), bb = shared.take(b)
        defer { shared.give(ba); shared.give(bb) }
        return body(ba.0, bb.0)
    }
}
