// Reductions: sum and mean over all values or over chosen axes.

extension Tensor {
    /// Sum of all values, as a scalar tensor. Differentiable.
    public func sum() -> Tensor {
        var acc: Double = 0
        storage.withUnsafeBufferPointer { p in for v in p { acc += Double(v) } }
        let y = Tensor(scalar: Float(acc))
        let inputShape = shape
        return y.recorded(inputs: [self]) { g in [Tensor(repeating: g.scalar, shape: inputShape)] }
    }

    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sum over `axes`; the result keeps them as size 1 when `keepingDimensions`. Differentiable.
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        precondition(normalized.allSatisfy { $0 >= 0 && $0 < rank }, "sum: axes \(axes) out of range for \(shape)")
        let kept = shape.enumerated().map { normalized.contains($0.offset) ? 1 : $0.element }
        let y = summed(toShape: kept)
        return keepingDimensions ? y : y.reshaped(shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element))
    }

    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        let n = normalized.map { shape[$0] }.reduce(1, *)
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) * (1 / Float(Swift.max(n, 1)))
    }

    /// Largest absolute value (no gradient): for checks and clipping.
    public var maxAbs: Float { storage.reduce(0) { Swift.max($0, abs($1)) } }

    /// True when every value is finite.
    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }
}
