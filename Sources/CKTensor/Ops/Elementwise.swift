// Elementwise arithmetic (broadcasting) and unary math: forward kernels with their pullbacks.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// MARK: - Binary (broadcasting)

public func + (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "add", +)
    let sa = a.shape, sb = b.shape
    return y.recorded(inputs: [a, b]) { g in [g.summed(toShape: sa), g.summed(toShape: sb)] }
}

public func - (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "sub", -)
    let sa = a.shape, sb = b.shape
    return y.recorded(inputs: [a, b]) { g in [g.summed(toShape: sa), (-g).summed(toShape: sb)] }
}

public func * (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "mul", *)
    let av = a.detached(), bv = b.detached()
    return y.recorded(inputs: [a, b]) { g in
        [a.requiresGradient ? (g * bv).summed(toShape: av.shape) : nil,
         b.requiresGradient ? (g * av).summed(toShape: bv.shape) : nil]
    }
}

public func / (a: Tensor, b: Tensor) -> Tensor {
    let y = broadcastBinary(a, b, "div", /)
    let av = a.detached(), bv = b.detached()
    return y.recorded(inputs: [a, b]) { g in
        // d(a/b)/db = -a / b^2
        [a.requiresGradient ? (g / bv).summed(toShape: av.shape) : nil,
         b.requiresGradient ? (broadcastBinary(g, bv, "div") { $0 / $1 } * av / bv).negated().summed(toShape: bv.shape) : nil]
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
    /// Applies `f` to every value (no recording); the building block of the unary ops below.
    @inline(__always)
    public func map(_ f: (Float) -> Float) -> Tensor {
        Tensor(shape: shape) { out in
            storage.withUnsafeBufferPointer { px in
                let o = out.baseAddress!, x = px.baseAddress!
                Parallel.forEachChunk(out.count) { r in for i in r { o[i] = f(x[i]) } }
            }
        }
    }

    /// Combines two same-shaped tensors value by value (no recording).
    @inline(__always)
    public func zipMap(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "zipMap: shape mismatch \(shape) vs \(other.shape)")
        return broadcastBinary(self, other, "zipMap", f)
    }

    /// scale * x + shift. Differentiable.
    public func mapped(scale: Float, shift: Float) -> Tensor {
        let y = map { scale * $0 + shift }
        return y.recorded(inputs: [self]) { g in [g.map { scale * $0 }] }
    }

    public func negated() -> Tensor { mapped(scale: -1, shift: 0) }

    // MARK: - Unary math

    public func exp() -> Tensor {
        let y = map { expf($0) }
        return y.recorded(inputs: [self]) { g in [g.zipMap(y) { $0 * $1 }] }
    }

    /// Natural log; the caller keeps values positive.
    public func log() -> Tensor {
        let x = detached()
        let y = map { logf($0) }
        return y.recorded(inputs: [self]) { g in [g.zipMap(x) { $0 / $1 }] }
    }

    public func sqrt() -> Tensor {
        let y = map { sqrtf($0) }
        return y.recorded(inputs: [self]) { g in [g.zipMap(y) { $0 * 0.5 / $1 }] }
    }

    /// x^p for a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        let x = detached()
        let y = map { powf($0, p) }
        return y.recorded(inputs: [self]) { g in [g.zipMap(x) { $0 * p * powf($1, p - 1) }] }
    }

    public func squared() -> Tensor {
        let x = detached()
        let y = map { $0 * $0 }
        return y.recorded(inputs: [self]) { g in [g.zipMap(x) { 2 * $0 * $1 }] }
    }

    /// SiLU: x * sigmoid(x). Uses the call-free `fastExp` so the loops vectorize.
    public func silu() -> Tensor {
        let x = detached()
        let y = map { $0 / (1 + fastExp(-$0)) }
        return y.recorded(inputs: [self]) { g in
            // d/dx x*s(x) = s * (1 + x * (1 - s))
            [g.zipMap(x) { gi, xi in let s = 1 / (1 + fastExp(-xi)); return gi * s * (1 + xi * (1 - s)) }]
        }
    }

    public func sigmoid() -> Tensor {
        let y = map { 1 / (1 + fastExp(-$0)) }
        return y.recorded(inputs: [self]) { g in [g.zipMap(y) { $0 * $1 * (1 - $1) }] }
    }

    /// Values clamped to [low, high]; the gradient passes where the value was inside.
    public func clamped(_ low: Float, _ high: Float) -> Tensor {
        let x = detached()
        let y = map { Swift.min(Swift.max($0, low), high) }
        return y.recorded(inputs: [self]) { g in [g.zipMap(x) { ($1 >= low && $1 <= high) ? $0 : 0 }] }
    }
}
