// Dropout: inverted dropout whose mask comes only from the caller's generator.

extension Tensor {
    /// Inverted dropout (Srivastava et al. 2014, https://jmlr.org/papers/v15/srivastava14a.html): each value
    /// is zeroed with probability `rate` and the kept ones are scaled by 1 / (1 - rate), so the expectation
    /// is unchanged. The mask depends on `rng` alone (one 32-bit draw per value, two per `next()`), so the
    /// same generator state gives the same mask: iCT runs student and teacher with one saved state.
    /// The backward applies the same mask. Rate 0 returns `self` and draws nothing.
    /// Inlinable so the generator's `next()` is specialized and inlined into the mask loop.
    @inlinable
    public func dropout(rate: Float, rng: inout some RandomNumberGenerator) -> Tensor {
        precondition(rate >= 0 && rate < 1, "dropout: rate \(rate) outside [0, 1) for input \(shape)")
        if rate == 0 { return self }
        // Keep a value when its draw u (uniform on 0..<2^32) is >= rate·2^32: probability 1 - rate.
        let threshold = UInt32(min(Double(rate) * 0x1p32, Double(UInt32.max)))
        let scale = 1 / (1 - rate), n = count
        // mask: (count) of 0 or 1
        let mask = [UInt8](unsafeUninitializedCapacity: n) { m, initialized in
            var i = 0
            while i < n {
                let bits = rng.next()
                m[i] = UInt32(truncatingIfNeeded: bits) >= threshold ? 1 : 0
                if i + 1 < n { m[i + 1] = UInt32(truncatingIfNeeded: bits >> 32) >= threshold ? 1 : 0 }
                i += 2
            }
            initialized = n
        }
        let y = Tensor.masked(self, mask, scale: scale)
        return y.recorded(inputs: [self]) { g in [Tensor.masked(g, mask, scale: scale)] }
    }

    // x, y: (count); mask: (count) of 0 or 1
    @usableFromInline
    static func masked(_ x: Tensor, _ mask: [UInt8], scale: Float) -> Tensor {
        Tensor(shape: x.shape) { out in
            x.storage.withUnsafeBufferPointer { px in mask.withUnsafeBufferPointer { pm in
                let o = out.baseAddress!, x = px.baseAddress!, m = pm.baseAddress!
                Parallel.forEachChunk(out.count) { r in for i in r { o[i] = x[i] * (Float(m[i]) * scale) } }
            } }
        }
    }
}
