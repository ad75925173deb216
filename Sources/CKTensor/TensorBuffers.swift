// Raw access to the values of many tensors at once, for kernels that split the concatenation of several
// tensors over the threads (a network's gradients, say) instead of waking the threads once per tensor.

extension Array where Element == Tensor {
    /// Runs `body` with the values of every tensor, in order (one nested access per tensor).
    public func withValueBuffers<R>(_ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        var buffers: [UnsafeBufferPointer<Float>] = []
        buffers.reserveCapacity(count)
        func enter(_ i: Int) throws -> R {
            guard i < count else { return try body(buffers) }
            return try self[i].storage.withUnsafeBufferPointer { values in
                buffers.append(values)
                return try enter(i + 1)
            }
        }
        return try enter(0)
    }

    /// Runs `body` with the values of every tensor writable, in order. A tensor whose values are shared with
    /// another is copied first (copy-on-write), as any in-place write would.
    public mutating func withMutableValueBuffers<R>(_ body: ([UnsafeMutableBufferPointer<Float>]) throws -> R) rethrows -> R {
        try withUnsafeMutableBufferPointer { tensors in
            var buffers: [UnsafeMutableBufferPointer<Float>] = []
            buffers.reserveCapacity(tensors.count)
            // Through the array's buffer pointer: one access per element, not nested accesses to the array.
            func enter(_ i: Int) throws -> R {
                guard i < tensors.count else { return try body(buffers) }
                return try tensors[i].storage.withUnsafeMutableBufferPointer { values in
                    buffers.append(values)
                    return try enter(i + 1)
                }
            }
            return try enter(0)
        }
    }

    /// Adds `other` (the same shapes, in the same order) to these tensors value by value, the concatenation of
    /// all of them split over the threads once.
    public mutating func addInPlace(_ other: [Tensor]) {
        precondition(map(\.shape) == other.map(\.shape), "addInPlace: shapes \(map(\.shape)) vs \(other.map(\.shape))")
        withMutableValueBuffers { sums in
            other.withValueBuffers { parts in
                Parallel.forEachSpan(sums.map(\.count)) { k, range in
                    guard !range.isEmpty else { return }           // an empty tensor inside a thread's span
                    let s = sums[k].baseAddress!, p = parts[k].baseAddress!
                    for i in range { s[i] += p[i] }
                }
            }
        }
    }
}

extension Array where Element == [Tensor] {
    /// Runs `body` with the values of every tensor of every list: `body(buffers)[p][k]` is list p's tensor k.
    public func withValueBuffers<R>(_ body: ([[UnsafeBufferPointer<Float>]]) throws -> R) rethrows -> R {
        var lists: [[UnsafeBufferPointer<Float>]] = []
        lists.reserveCapacity(count)
        func enter(_ p: Int) throws -> R {
            guard p < count else { return try body(lists) }
            return try self[p].withValueBuffers { buffers in
                lists.append(buffers)
                return try enter(p + 1)
            }
        }
        return try enter(0)
    }

    /// The lists added tensor by tensor in order (list 0 + list 1 + ...), into list 0's buffers; leaves `self`
    /// empty, so that those buffers are not shared and are added to in place.
    public mutating func takeSum() -> [Tensor] {
        guard !isEmpty else { return [] }
        var sums = removeFirst()
        for list in self { sums.addInPlace(list) }
        removeAll()
        return sums
    }
}
