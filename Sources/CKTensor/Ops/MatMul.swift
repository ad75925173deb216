// Matrix products: the one place that calls cblas_sgemm. Linear layers (y = x W^T + b) live here too.
import COpenBLAS

/// C = alpha * op(A) * op(B) + beta * C, row-major; op(X) is X or its transpose.
/// A is (M x K) after op, B is (K x N) after op, C is (M x N).
@inline(__always)
public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                 b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let call = {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    if m * n * k < Parallel.serialGEMMWork && !Parallel.blasIsSerial {
        Parallel.withSerialBLAS(call)
    } else {
        call()
    }
}

extension Tensor {
    /// (M, K) x (K, N) -> (M, N), with either operand optionally transposed first. Differentiable.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul: needs 2-D operands, got \(shape) and \(other.shape)")
        let m = transposeSelf ? shape[1] : shape[0], k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0], n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(k == k2, "matmul: inner sizes differ, \(shape)\(transposeSelf ? "ᵀ" : "") x \(other.shape)\(transposeOther ? "ᵀ" : "")")
        let y = Tensor(shape: [m, n]) { out in
            storage.withUnsafeBufferPointer { pa in
                other.storage.withUnsafeBufferPointer { pb in
                    gemm(transposeA: transposeSelf, transposeB: transposeOther, m: m, n: n, k: k,
                         a: pa.baseAddress!, lda: shape[1], b: pb.baseAddress!, ldb: other.shape[1],
                         c: out.baseAddress!, ldc: n)
                }
            }
        }
        let a = detached(), b = other.detached(), ta = transposeSelf, tb = transposeOther
        return y.recorded(inputs: [self, other]) { g in
            // C = A B: dA = G B^T, dB = A^T G (then transposed back where an operand was transposed)
            let da: Tensor? = !self.requiresGradient ? nil :
                (ta ? b.matmul(g, transposeSelf: tb, transposeOther: true) : g.matmul(b, transposeOther: !tb))
            let db: Tensor? = !other.requiresGradient ? nil :
                (tb ? g.matmul(a, transposeSelf: true, transposeOther: ta) : a.matmul(g, transposeSelf: !ta))
            return [da, db]
        }
    }

    /// y = x W^T + b for x (N, in), W (out, in), b (out): PyTorch's Linear layout. Differentiable.
    public func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(rank == 2 && weight.rank == 2 && shape[1] == weight.shape[1],
                     "linear: input \(shape) does not match weight \(weight.shape)")
        let y = matmul(weight, transposeOther: true)
        guard let bias else { return y }
        precondition(bias.shape == [weight.shape[0]], "linear: bias \(bias.shape) for weight \(weight.shape)")
        return y + bias
    }
}
