// Softmax family over the last axis: log-softmax (row max subtracted) with its pullback, and the
// softmax cross-entropy loss composed from it.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

extension Tensor {
    /// log softmax over the last axis of (..., K): y_j = x_j - log(sum_i exp(x_i)) per row, computed as
    /// x_j - m - log(sum_i exp(x_i - m)) with m the row max. Shape-preserving. Differentiable.
    public func logSoftmax() -> Tensor {
        precondition(rank >= 1 && shape[rank - 1] > 0, "logSoftmax: needs a non-empty last axis, got \(shape)")
        let k = shape[rank - 1], rows = count / k
        let y = Tensor(shape: shape) { out in
            storage.withUnsafeBufferPointer { src in
                for r in 0..<rows {
                    let x = src.baseAddress! + r * k, o = out.baseAddress! + r * k
                    var m = -Float.infinity
                    for j in 0..<k { m = Swift.max(m, x[j]) }       // subtract the row max: exp overflows past 88
                    var s: Float = 0
                    for j in 0..<k { s += expf(x[j] - m) }
                    let lse = m + logf(s)
                    for j in 0..<k { o[j] = x[j] - lse }
                }
            }
        }
        return y.recorded(inputs: [self]) { g in
            // y_j = x_j - lse(x) and d lse / dx_i = softmax_i = exp(y_i), so dx_i = g_i - exp(y_i) * sum_j g_j
            [Tensor(shape: y.shape) { dx in
                g.storage.withUnsafeBufferPointer { gp in
                    y.storage.withUnsafeBufferPointer { yp in
                        for r in 0..<rows {
                            let gr = gp.baseAddress! + r * k, yr = yp.baseAddress! + r * k
                            var total: Float = 0
                            for j in 0..<k { total += gr[j] }
                            for j in 0..<k { dx[r * k + j] = gr[j] - expf(yr[j]) * total }
                        }
                    }
                }
            }]
        }
    }

    /// softmax over the last axis, exp(logSoftmax): rows sum to 1. Differentiable.
    public func softmax() -> Tensor { logSoftmax().exp() }

    /// Mean softmax cross-entropy of logits (N, K) against class indices in 0..<K:
    /// -(1/N) sum_n logSoftmax(x)[n, label_n]. Scalar. Differentiable in the logits
    /// (the gradient is (softmax - onehot) / N).
    public func crossEntropy(labels: [Int]) -> Tensor {
        precondition(rank == 2 && labels.count == shape[0] && shape[0] > 0,
                     "crossEntropy: logits \(shape) need (N, K) with N = \(labels.count) labels")
        let (n, k) = (shape[0], shape[1])
        var oneHot = Tensor(zeros: [n, k])
        for (i, label) in labels.enumerated() {
            precondition(label >= 0 && label < k, "crossEntropy: label \(label) at row \(i) outside 0..<\(k) for logits \(shape)")
            oneHot.storage[i * k + label] = 1
        }
        return (logSoftmax() * oneHot).sum() * (-1 / Float(n))
    }
}
