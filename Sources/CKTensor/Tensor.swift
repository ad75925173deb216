// Tensor: float32, contiguous row-major storage (copy-on-write via Array), optional autodiff node.

/// A float32 tensor. Layout is always contiguous row-major (NCHW for images).
/// A tensor that takes part in differentiation carries a `node` on the graph (see Tape.swift).
public struct Tensor {
    public private(set) var shape: [Int]
    public var storage: [Float]
    public internal(set) var node: TapeNode?

    public init(shape: [Int], storage: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == storage.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) values, got \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.node = nil
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    public init(scalar: Float) { self.init(shape: [], storage: [scalar]) }

    /// Builds storage by writing into an uninitialized buffer of `count(shape)` floats.
    @inlinable
    public init(shape: [Int], unsafeUninitialized fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let n = shape.reduce(1, *)
        let values = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            fill(buffer)
            initialized = n
        }
        self.init(shape: shape, storage: values)
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// The single value of a one-element tensor.
    public var scalar: Float {
        precondition(storage.count == 1, "scalar: tensor of shape \(shape) has \(storage.count) values")
        return storage[0]
    }

    public subscript(flat index: Int) -> Float {
        get { storage[index] }
        set { storage[index] = newValue }
    }

    /// True when gradients flow through this tensor.
    public var requiresGradient: Bool { node != nil }

    /// The same values, cut from the graph: stop-gradient.
    public func detached() -> Tensor {
        var t = self
        t.node = nil
        return t
    }

    /// A leaf of the graph: gradients with respect to this tensor can be asked for.
    public func trackingGradients() -> Tensor {
        var t = self
        t.node = TapeNode(leafShape: shape)
        return t
    }

    /// Same values, new shape (same element count). Differentiable.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var dims = newShape
        if let inferred = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            dims[inferred] = known == 0 ? 0 : count / known
        }
        precondition(dims.reduce(1, *) == count, "reshaped: \(shape) has \(count) values, cannot become \(newShape)")
        var y = Tensor(shape: dims, storage: storage)
        let inputShape = shape
        y = y.recorded(inputs: [self]) { g in [g.reshaped(inputShape)] }
        return y
    }

    /// Reinterprets the shape in place without recording (for a tensor with no graph node).
    public mutating func setShape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == count, "setShape: \(shape) -> \(newShape) changes the count")
        shape = newShape
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = storage.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}
