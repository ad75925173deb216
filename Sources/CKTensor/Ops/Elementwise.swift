// Elementwise arithmetic (broadcasting) and unary math: forward kernels with their pullbacks.
// Each scalar function is a small struct, not a closure: generic kernels specialize on it and the
// per-element call inlines and vectorizes even inside the multi-threaded loops.
import Glibc

public protocol UnaryFunction {
    func callAsFunction(_ x: Float) -> Float
}

// MARK: - Scalar functions

struct Add: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b } }
struct Subtract: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b } }
struct Multiply: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b } }
struct Divide: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }
/// -g * a / b^2 as f(g/b, a/b) = -(g/b)(a/b): the divisor's gradient of a / b.
struct NegativeProduct: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { -a * b } }

struct Affine: UnaryFunction {
    let scale: Float, shift: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { scale * x + shift }
}
struct Exp: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { expf(x) } }
struct Log: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { logf(x) } }
struct Sqrt: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { x.squareRoot() } }
struct Power: UnaryFunction {
    let p: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { powf(x, p) }
}
struct Square: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { x * x } }
struct SiLU: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { x / (1 + fastExp(-x)) } }
struct Sigmoid: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { 1 / (1 + fastExp(-x)) } }
struct Clamp: UnaryFunction {
    let low: Float, high: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(x, low), high) }
}

// Pullback helpers: f(g, saved) where saved is the op's input x or output y.
struct ExpGrad: BinaryFunction { @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { g * y } }
/// 0 at y = 0, where the slope is infinite: sqrt takes the norm in the pseudo-Huber losses, whose kink at a
/// zero difference (c = 0) then gets the subgradient 0 instead of inf * 0 = NaN.
struct SqrtGrad: BinaryFunction { @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { y > 0 ? g * 0.5 / y : 0 } }
struct PowerGrad: BinaryFunction {
    let p: Float
    @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float { g * p * powf(x, p - 1) }
}
struct SquareGrad: BinaryFunction { @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float { 2 * g * x } }
struct SiLUGrad: BinaryFunction {
    // d/dx x*s(x) = s * (1 + x * (1 - s))
    @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float {
        let s = 1 / (1 + fastExp(-x))
        return g * s * (1 + x * (1 - s))
    }
}
struct SigmoidGrad: BinaryFunction { @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { g * y * (1 - y) } }
struct ClampGrad: BinaryFunction {
    let low: Float, high: Float
    @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float { (x >= low && x <= high) ? g : 0 }
}

// MARK: - Binary (broadcasting)

public func + (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "add", Add())
    let sa = a.shape, sb = b.shape, sy = y.shape
    return y.recorded(inputs: [a, b], takesLeadingRows: true) { g in
        [g.summed(toOperand: sa, ofOutput: sy), g.summed(toOperand: sb, ofOutput: sy)]
    }
}

public func - (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "sub", Subtract())
    let sa = a.shape, sb = b.shape, sy = y.shape
    return y.recorded(inputs: [a, b], takesLeadingRows: true) { g in
        [g.summed(toOperand: sa, ofOutput: sy), (-g).summed(toOperand: sb, ofOutput: sy)]
    }
}

public func * (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "mul", Multiply())
    let av = a.detached(), bv = b.detached(), needA = a.requiresGradient, needB = b.requiresGradient, sy = y.shape
    return y.recorded(inputs: [a, b], takesLeadingRows: true) { g in
        [needA ? (g * bv.meeting(g, ofOutput: sy)).summed(toOperand: av.shape, ofOutput: sy) : nil,
         needB ? (g * av.meeting(g, ofOutput: sy)).summed(toOperand: bv.shape, ofOutput: sy) : nil]
    }
}

public func / (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "div", Divide())
    let bv = b.detached(), needA = a.requiresGradient, needB = b.requiresGradient
    let sa = a.shape, sb = b.shape
    return y.recorded(inputs: [a, b]) { g in
        // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -(g/b) * y
        let gOverB = g / bv
        return [needA ? gOverB.summed(toShape: sa) : nil,
                needB ? broadcastBinary(gOverB, y, "div", NegativeProduct()).summed(toShape: sb) : nil]
    }
}

public prefix func - (a: Tensor) -> Tensor { a.negated() }

// MARK: - With a scalar

public func * (a: Tensor, s: Float) -> Tensor { a.mapped(scale: s, shift: 0) }
public func * (s: Float, a: Tensor) -> Tensor { a.mapped(scale: s, shift: 0) }
public func / (a: Tensor, s: Float) -> Tensor { a.mapped(scale: 1 / s, shift: 0) }
public func + (a: Tensor, s: Float) -> Tensor { a.mapped(scale: 1, shift: s) }
public func + (s: Float, a: Tensor) -> Tensor { a.mapped(scale: 1, shift: s) }
public func - (a: Tensor, s: Float) -> Tensor { a.mapped(scale: 1, shift: -s) }
public func - (s: Float, a: Tensor) -> Tensor { a.mapped(scale: -1, shift: s) }

extension Tensor {
    /// Applies `f` to every value (no recording): the kernel of the unary ops below.
    @inline(__always)
    public func map<F: UnaryFunction>(_ f: F) -> Tensor { mapChunks { x, o, r in unaryLoop(f, x, o, r) } }

    /// `loop(x, out, range)` over the values in chunks spread over the threads, into a new tensor of this shape.
    @inline(__always)
    func mapChunks(_ loop: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Range<Int>) -> Void) -> Tensor {
        Tensor(shape: shape) { out in
            storage.withUnsafeBufferPointer { px in
                let o = out.baseAddress!, x = px.baseAddress!
                Parallel.forEachChunk(out.count) { r in loop(x, o, r) }
            }
        }
    }

    /// Combines two same-shaped tensors value by value (no recording).
    @inline(__always)
    public func zipMap<F: BinaryFunction>(_ other: Tensor, _ f: F) -> Tensor {
        precondition(shape == other.shape, "zipMap: shape mismatch \(shape) vs \(other.shape)")
        return broadcastBinary(self, other, "zipMap", f)
    }

    /// scale * x + shift. Differentiable.
    public func mapped(scale: Float, shift: Float) -> Tensor {
        let y = map(Affine(scale: scale, shift: shift))
        return y.recorded(inputs: [self], takesLeadingRows: true) { g in [g.map(Affine(scale: scale, shift: 0))] }
    }

    public func negated() -> Tensor { mapped(scale: -1, shift: 0) }

    // MARK: - Unary math

    public func exp() -> Tensor {
        let y = map(Exp())
        return y.recorded(inputs: [self]) { g in [g.zipMap(y, ExpGrad())] }
    }

    /// Natural log; the caller keeps values positive.
    public func log() -> Tensor {
        let x = detached()
        return map(Log()).recorded(inputs: [self]) { g in [g.zipMap(x, Divide())] }
    }

    public func sqrt() -> Tensor {
        let y = map(Sqrt())
        return y.recorded(inputs: [self]) { g in [g.zipMap(y, SqrtGrad())] }
    }

    /// x^p for a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        let x = detached()
        return map(Power(p: p)).recorded(inputs: [self]) { g in [g.zipMap(x, PowerGrad(p: p))] }
    }

    public func squared() -> Tensor {
        let x = detached()
        return map(Square()).recorded(inputs: [self]) { g in [g.zipMap(x, SquareGrad())] }
    }

    /// SiLU: x * sigmoid(x), through the call-free `fastExp` (PointwiseLoops.swift).
    public func silu() -> Tensor {
        let x = detached()
        return mapChunks(siluLoop).recorded(inputs: [self], takesLeadingRows: true) { g in [g.zipMap(leadingRowsOf: x, siluGradientLoop)] }
    }

    public func sigmoid() -> Tensor {
        let y = map(Sigmoid())
        return y.recorded(inputs: [self]) { g in [g.zipMap(y, SigmoidGrad())] }
    }

    /// Values clamped to [low, high]; the gradient passes where the value was inside.
    public func clamped(_ low: Float, _ high: Float) -> Tensor {
        let x = detached()
        return map(Clamp(low: low, high: high)).recorded(inputs: [self]) { g in [g.zipMap(x, ClampGrad(low: low, high: high))] }
    }
}

@inline(__always)
func unaryLoop<F: UnaryFunction>(_ f: F, _ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
    for i in r { o[i] = f(x[i]) }
}
