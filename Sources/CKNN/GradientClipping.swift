// Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_.
import CKTensor

/// Scales all gradients together so their joint L2 norm is at most `maxNorm`, and returns the norm
/// before clipping. As PyTorch: coefficient = maxNorm / (norm + 1e-6), applied only when it is below 1.
/// A non-finite norm leaves the gradients unchanged; the caller checks the returned norm and reports it.
@discardableResult
public func clipGradientNorm(_ gradients: inout [Tensor], maxNorm: Float) -> Float {
    var sumSquares = 0.0
    for g in gradients {
        g.storage.withUnsafeBufferPointer { sumSquares += squaredNorm($0) }
    }
    let norm = Float(sumSquares.squareRoot())
    let coefficient = maxNorm / (norm + 1e-6)
    if coefficient < 1 {
        for i in gradients.indices {
            gradients[i].storage.withUnsafeMutableBufferPointer { b in
                for j in b.indices { b[j] *= coefficient }
            }
        }
    }
    return norm
}

/// Sum of squares: SIMD float partial sums over blocks, accumulated in double
/// (a million float squares summed in one float lose digits).
func squaredNorm(_ b: UnsafeBufferPointer<Float>) -> Double {
    guard let base = b.baseAddress else { return 0 }
    let raw = UnsafeRawPointer(base)
    let n = b.count, block = 4096
    var total = 0.0, start = 0
    while start < n {
        let end = min(start + block, n)
        var acc = SIMD8<Float>()
        var j = start
        while j + 8 <= end {
            let x = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            acc += x * x
            j += 8
        }
        var tail: Float = 0
        while j < end { tail += base[j] * base[j]; j += 1 }
        total += Double(acc.sum()) + Double(tail)
        start = end
    }
    return total
}

/// The L2 norm of one tensor's values.
public func l2Norm(_ t: Tensor) -> Float {
    Float(t.storage.withUnsafeBufferPointer(squaredNorm).squareRoot())
}
