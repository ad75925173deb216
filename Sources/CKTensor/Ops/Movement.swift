// Movement: concatenation, slicing along the first axis, rows by index, axis permutation, nearest 2x upsampling.

extension Tensor {
    /// Joins tensors along `axis`; all other dimensions must agree. Differentiable.
    public static func concatenate(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concatenate: no tensors")
        let rank = parts[0].rank
        precondition(axis >= 0 && axis < rank, "concatenate: axis \(axis) for rank \(rank)")
        for p in parts {
            precondition(p.rank == rank && (0..<rank).allSatisfy { $0 == axis || p.shape[$0] == parts[0].shape[$0] },
                         "concatenate: shapes \(parts.map(\.shape)) differ off axis \(axis)")
        }
        let outer = parts[0].shape[..<axis].reduce(1, *)
        let inners = parts.map { $0.shape[axis...].reduce(1, *) }   // values per outer index, per part
        let total = inners.reduce(0, +)
        var shape = parts[0].shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let y = Tensor(shape: shape) { out in
            var offset = 0
            for (p, inner) in zip(parts, inners) {
                p.storage.withUnsafeBufferPointer { src in
                    for o in 0..<outer {
                        (out.baseAddress! + o * total + offset).update(from: src.baseAddress! + o * inner, count: inner)
                    }
                }
                offset += inner
            }
        }
        let shapes = parts.map(\.shape)
        // Joined along a later axis, a gradient of the leading rows splits into the parts' leading rows.
        return y.recorded(inputs: parts, takesLeadingRows: axis > 0) { g in
            var offset = 0
            let outer = g.shape[..<axis].reduce(1, *)
            return zip(shapes, inners).map { (s, inner) -> Tensor? in
                defer { offset += inner }
                return Tensor(shape: axis == 0 ? s : [g.shape[0]] + s.dropFirst()) { dst in
                    g.storage.withUnsafeBufferPointer { src in
                        for o in 0..<outer {
                            (dst.baseAddress! + o * inner).update(from: src.baseAddress! + o * total + offset, count: inner)
                        }
                    }
                }
            }
        }
    }

    /// Rows `range` of the first axis. Differentiable.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "slice: \(range) of \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        let y = detachedRows(range)
        let fullShape = shape
        return y.recorded(inputs: [self]) { g in
            var full = [Float](repeating: 0, count: fullShape.reduce(1, *))
            full.replaceSubrange((range.lowerBound * inner)..<(range.upperBound * inner), with: g.storage)
            return [Tensor(shape: fullShape, storage: full)]
        }
    }

    /// Rows `indices` of the first axis in that order, repeats allowed: y[r] = self[indices[r]]. Differentiable: a row
    /// taken several times gets the sum of its copies' gradients, added in the order of `indices`. A gradient of y's
    /// leading rows (LeadingRows.swift) comes back as one of self's leading rows up to the last row they took, so
    /// with indices numbered in order of first use (`DistinctConditions`) the rows only later rows take get no work.
    public func rows(at indices: [Int]) -> Tensor {
        precondition(rank >= 1, "rows(at:): needs a tensor with rows, got shape \(shape)")
        let count = shape[0], inner = shape.dropFirst().reduce(1, *)
        for i in indices { precondition(i >= 0 && i < count, "rows(at:): row \(i) of a tensor of \(count) rows") }
        let y = Tensor(shape: [indices.count] + shape.dropFirst(), unsafeUninitialized: { out in
            storage.withUnsafeBufferPointer { src in
                for (r, i) in indices.enumerated() {
                    (out.baseAddress! + r * inner).initialize(from: src.baseAddress! + i * inner, count: inner)
                }
            }
        })
        let fullShape = shape
        return y.recorded(inputs: [self], takesLeadingRows: true) { g in
            let taken = indices.prefix(g.shape[0])
            let rows = fullShape[0] == 0 ? 0 : (taken.max().map { $0 + 1 } ?? 0)
            var sums = [Float](repeating: 0, count: rows * inner)
            g.storage.withUnsafeBufferPointer { src in
                sums.withUnsafeMutableBufferPointer { dst in
                    for (r, i) in taken.enumerated() {
                        for k in 0..<inner { dst[i * inner + k] += src[r * inner + k] }
                    }
                }
            }
            return [Tensor(shape: [rows] + fullShape.dropFirst(), storage: sums)]
        }
    }

    /// Dimensions reordered: output dimension k is input dimension `permutation[k]`. Differentiable.
    public func permuted(_ permutation: [Int]) -> Tensor {
        precondition(permutation.sorted() == Array(0..<rank), "permuted: \(permutation) is not a permutation of 0..<\(rank)")
        let outShape = permutation.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for k in stride(from: rank - 2, through: 0, by: -1) { inStrides[k] = inStrides[k + 1] * shape[k + 1] }
        let srcStrides = permutation.map { inStrides[$0] }
        let y = Tensor(shape: outShape) { out in
            storage.withUnsafeBufferPointer { src in
                var index = [Int](repeating: 0, count: rank)
                var offset = 0
                for i in 0..<out.count {
                    out[i] = src[offset]
                    var k = rank - 1
                    while k >= 0 {
                        index[k] += 1; offset += srcStrides[k]
                        if index[k] < outShape[k] { break }
                        offset -= srcStrides[k] * outShape[k]; index[k] = 0; k -= 1
                    }
                }
            }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (k, p) in permutation.enumerated() { inverse[p] = k }
        return y.recorded(inputs: [self]) { g in [g.permuted(inverse)] }
    }

    /// Nearest-neighbour 2x upsampling of (N, C, H, W) to (N, C, 2H, 2W). Differentiable.
    public func upsampledNearest2x() -> Tensor {
        precondition(rank == 4, "upsampledNearest2x: needs (N, C, H, W), got \(shape)")
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let y = Tensor(shape: [shape[0], shape[1], 2 * h, 2 * w]) { out in
            storage.withUnsafeBufferPointer { src in
                let o = out.baseAddress!, x = src.baseAddress!
                Parallel.forEachChunk(planes, minimumPerChunk: 8) { r in
                    for p in r {
                        for i in 0..<h {
                            // Both output rows in one pass: a copy of the first row was a memmove call per row.
                            let row = o + p * 4 * h * w + 2 * i * 2 * w, next = row + 2 * w
                            for j in 0..<w {
                                let v = x[p * h * w + i * w + j]
                                row[2 * j] = v; row[2 * j + 1] = v; next[2 * j] = v; next[2 * j + 1] = v
                            }
                        }
                    }
                }
            }
        }
        let channels = shape[1]
        return y.recorded(inputs: [self], takesLeadingRows: true) { g in
            // Each input pixel fed a 2x2 block: its gradient is the block's sum.
            [Tensor(shape: [g.shape[0], channels, h, w]) { dx in
                g.storage.withUnsafeBufferPointer { src in
                    let gp = src.baseAddress!
                    for p in 0..<(g.shape[0] * channels) {
                        for i in 0..<h {
                            let r0 = gp + p * 4 * h * w + 2 * i * 2 * w, r1 = r0 + 2 * w
                            for j in 0..<w { dx[p * h * w + i * w + j] = r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1] }
                        }
                    }
                }
            }]
        }
    }
}
