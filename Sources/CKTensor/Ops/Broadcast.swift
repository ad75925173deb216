// Broadcasting (NumPy rules): the shared iteration for binary ops, broadcast-to and its adjoint sum-to-shape.

/// Output shape of broadcasting `a` against `b`, or nil if they do not broadcast.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for k in 0..<rank {
        let da = k < rank - a.count ? 1 : a[k - (rank - a.count)]
        let db = k < rank - b.count ? 1 : b[k - (rank - b.count)]
        if da == db || db == 1 { out[k] = da } else if da == 1 { out[k] = db } else { return nil }
    }
    return out
}

/// Strides of `shape` seen inside `outShape` (0 along broadcast dimensions), collapsed with the
/// output's dimensions so the innermost loop is as long as possible.
struct BroadcastLoop {
    var sizes: [Int] = []       // collapsed output dimensions, outermost first
    var stridesA: [Int] = []
    var stridesB: [Int] = []

    init(out: [Int], a: [Int], b: [Int]) {
        let sa = BroadcastLoop.strides(of: a, in: out), sb = BroadcastLoop.strides(of: b, in: out)
        for k in 0..<out.count where out[k] != 1 {
            if let last = sizes.indices.last,
               stridesA[last] == sa[k] * out[k], stridesB[last] == sb[k] * out[k] {
                sizes[last] *= out[k]; stridesA[last] = sa[k]; stridesB[last] = sb[k]
            } else {
                sizes.append(out[k]); stridesA.append(sa[k]); stridesB.append(sb[k])
            }
        }
        if sizes.isEmpty { sizes = [1]; stridesA = [0]; stridesB = [0] }
    }

    static func strides(of shape: [Int], in out: [Int]) -> [Int] {
        let pad = out.count - shape.count
        var strides = [Int](repeating: 0, count: out.count)
        var running = 1
        for k in stride(from: out.count - 1, through: pad, by: -1) {
            let d = shape[k - pad]
            strides[k] = d == 1 ? 0 : running
            running *= d
        }
        return strides
    }

    /// Calls `inner(outOffset, offsetA, offsetB, length, strideA, strideB)` for each run of the innermost dimension.
    @inline(__always)
    func forEachRun(_ inner: (Int, Int, Int, Int, Int, Int) -> Void) {
        let r = sizes.count, n = sizes[r - 1], ia = stridesA[r - 1], ib = stridesB[r - 1]
        let outer = sizes.dropLast().reduce(1, *)
        var index = [Int](repeating: 0, count: max(0, r - 1))
        var offA = 0, offB = 0
        for run in 0..<outer {
            inner(run * n, offA, offB, n, ia, ib)
            var k = r - 2
            while k >= 0 {
                index[k] += 1; offA += stridesA[k]; offB += stridesB[k]
                if index[k] < sizes[k] { break }
                offA -= stridesA[k] * sizes[k]; offB -= stridesB[k] * sizes[k]; index[k] = 0
                k -= 1
            }
        }
    }
}

/// A scalar function of two values. Kernels are generic over it (not closures) so that the call
/// specializes and inlines inside the loops that run on several threads.
public protocol BinaryFunction {
    func callAsFunction(_ a: Float, _ b: Float) -> Float
}

/// The first argument, unchanged: broadcasting a tensor to a shape is `broadcastBinary(x, zerosOfShape, First())`.
struct First: BinaryFunction {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a }
}

/// Elementwise `op(a, b)` with broadcasting; no recording (callers add the pullback).
@inline(__always)
func broadcastBinary<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, _ name: String, _ op: F) -> Tensor {
    if a.shape == b.shape { return leadingValues(a, b, shape: a.shape, op) }
    guard let shape = broadcastShape(a.shape, b.shape) else {
        preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    let loop = BroadcastLoop(out: shape, a: a.shape, b: b.shape)
    return Tensor(shape: shape) { out in
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                broadcastLoop(op, loop, pa.baseAddress!, pb.baseAddress!, out.baseAddress!)
            }
        }
    }
}

/// `op` of the first `count(shape)` values of `a` and of `b`, value by value, as a tensor of `shape`.
@inline(__always)
func leadingValues<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, shape: [Int], _ op: F) -> Tensor {
    leadingValues(a, b, shape: shape) { x, y, o, r in binaryLoop(op, x, y, o, r) }
}

/// `loop(a, b, out, range)` over the first `count(shape)` values in chunks spread over the threads.
@inline(__always)
func leadingValues(_ a: Tensor, _ b: Tensor, shape: [Int],
                   _ loop: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Range<Int>) -> Void) -> Tensor {
    Tensor(shape: shape) { out in
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                let o = out.baseAddress!, x = pa.baseAddress!, y = pb.baseAddress!
                Parallel.forEachChunk(out.count) { r in loop(x, y, o, r) }
            }
        }
    }
}

@inline(__always)
func binaryLoop<F: BinaryFunction>(_ op: F, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                   _ o: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
    for i in r { o[i] = op(x[i], y[i]) }
}

func broadcastLoop<F: BinaryFunction>(_ op: F, _ loop: BroadcastLoop, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                      _ o: UnsafeMutablePointer<Float>) {
    loop.forEachRun { off, offA, offB, n, sa, sb in
        if sa == 1 && sb == 0 {
            let v = y[offB]; for i in 0..<n { o[off + i] = op(x[offA + i], v) }
        } else if sa == 0 && sb == 1 {
            let v = x[offA]; for i in 0..<n { o[off + i] = op(v, y[offB + i]) }
        } else if sa == 1 && sb == 1 {
            for i in 0..<n { o[off + i] = op(x[offA + i], y[offB + i]) }
        } else {
            for i in 0..<n { o[off + i] = op(x[offA + i * sa], y[offB + i * sb]) }
        }
    }
}

extension Tensor {
    /// Repeats values along size-1 (or missing leading) dimensions to `target`. Differentiable.
    public func broadcasted(to target: [Int]) -> Tensor {
        if shape == target { return self }
        precondition(broadcastShape(shape, target) == target, "broadcasted: \(shape) does not broadcast to \(target)")
        // The zero tensor only supplies the shape; its values are ignored.
        let y = broadcastBinary(self, Tensor(zeros: target), "broadcasted", First())
        let inputShape = shape
        return y.recorded(inputs: [self]) { g in [g.summed(toShape: inputShape)] }
    }

    /// Sums over the dimensions along which `target` was broadcast: the adjoint of `broadcasted(to:)`.
    public func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        precondition(broadcastShape(target, shape) == shape, "summed(toShape:): \(target) does not broadcast to \(shape)")
        let loop = BroadcastLoop(out: shape, a: shape, b: target)
        var out = [Float](repeating: 0, count: target.reduce(1, *))
        storage.withUnsafeBufferPointer { pg in
            out.withUnsafeMutableBufferPointer { po in
                let g = pg.baseAddress!, o = po.baseAddress!
                loop.forEachRun { _, offA, offB, n, sa, sb in
                    if sb == 0 && sa == 1 {
                        // A contiguous run (a bias's gradient over a plane): 8 lanes at a time, not one chain.
                        o[offB] += Float(spanSum(g + offA, n))
                    } else if sb == 0 {
                        var acc: Float = 0
                        for i in 0..<n { acc += g[offA + i * sa] }
                        o[offB] += acc
                    } else {
                        for i in 0..<n { o[offB + i * sb] += g[offA + i * sa] }
                    }
                }
            }
        }
        let y = Tensor(shape: target, storage: out)
        let inputShape = shape
        return y.recorded(inputs: [self]) { g in [g.broadcasted(to: inputShape)] }
    }
}
