// Gradients that cover only a tensor's leading rows. A consistency pair runs its student and its teacher as one
// batch (one product per layer instead of two), and only the student's rows carry a gradient back: the ops on
// the way take a gradient of those rows and skip the teacher's.
//
// The convention: a gradient of shape [r] + s for a tensor of shape [n] + s, r < n, means rows r..<n are zero.
// A pullback recorded with `takesLeadingRows` accepts one; the tape pads it with zero rows for any other.

extension Tensor {
    /// The first `count` rows (a copy). Differentiable: the gradient it sends back covers only those rows.
    public func leadingRows(_ count: Int) -> Tensor {
        precondition(rank >= 1 && (0...shape[0]).contains(count), "leadingRows: \(count) rows of \(shape)")
        return detachedRows(0..<count).recorded(inputs: [self], takesLeadingRows: true) { g in [g] }
    }

    /// Rows `range` of the first axis, off the graph (a stop-gradient copy).
    public func detachedRows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "detachedRows: \(range) of \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        var outShape = shape
        outShape[0] = range.count
        return Tensor(shape: outShape, storage: Array(storage[(range.lowerBound * inner)..<(range.upperBound * inner)]))
    }

    /// Whether this is a gradient of fewer than all the rows of a tensor of shape `full`.
    func coversLeadingRows(of full: [Int]) -> Bool {
        rank >= 1 && rank == full.count && shape[0] < full[0] && shape.dropFirst() == full.dropFirst()
    }

    /// This gradient with zero rows appended up to the tensor's shape `full` (itself when it has them all).
    func withRows(of full: [Int]) -> Tensor {
        guard shape != full else { return self }
        precondition(coversLeadingRows(of: full), "withRows: \(shape) is not the leading rows of \(full)")
        var values = storage
        values.append(contentsOf: repeatElement(0, count: full.reduce(1, *) - count))
        return Tensor(shape: full, storage: values)
    }

    /// self += other, two gradients of one tensor, either of which may cover fewer rows.
    mutating func addGradient(_ other: Tensor) {
        if shape == other.shape { return addInPlace(other) }
        if other.count > count {
            var sum = other.detached()
            sum.addLeading(self)
            self = sum
        } else {
            addLeading(other)
        }
    }

    /// self[rows of other] += other, for `other` covering self's leading rows.
    private mutating func addLeading(_ other: Tensor) {
        precondition(other.coversLeadingRows(of: shape), "addGradient: \(other.shape) does not cover rows of \(shape)")
        addToLeadingValues(other)
    }

    /// Rows of this gradient of an op's output (shape `output`), seen by an operand of shape `operand`: the operand's
    /// own leading rows when it runs along the output's rows, the operand's whole shape when broadcast along them.
    static func operandShape(_ operand: [Int], meeting gradient: [Int], ofOutput output: [Int]) -> [Int] {
        guard gradient != output, operand.count == output.count, operand.first == output.first else { return operand }
        return [gradient[0]] + operand.dropFirst()
    }

    /// The operand's values that meet this gradient of an op's output (shape `output`): its leading rows when the
    /// gradient covers only those of the output.
    func meeting(_ gradient: Tensor, ofOutput output: [Int]) -> Tensor {
        let rows = Tensor.operandShape(shape, meeting: gradient.shape, ofOutput: output)
        return rows == shape ? self : detachedRows(0..<rows[0])
    }

    /// The adjoint of broadcasting an operand of shape `operand` to `output`, for a gradient that may cover only
    /// the output's leading rows.
    func summed(toOperand operand: [Int], ofOutput output: [Int]) -> Tensor {
        summed(toShape: Tensor.operandShape(operand, meeting: shape, ofOutput: output))
    }

    /// `loop(self, other, out, range)` against the same rows of `other`, which may have more of them (a pullback's
    /// saved input), in chunks spread over the threads.
    func zipMap(leadingRowsOf other: Tensor,
                _ loop: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Range<Int>) -> Void) -> Tensor {
        precondition(shape == other.shape || coversLeadingRows(of: other.shape), "zipMap: \(shape) is not the leading rows of \(other.shape)")
        return leadingValues(self, other, shape: shape, loop)
    }
}
