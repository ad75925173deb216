// Matrix products: the one place that calls cblas_sgemm or our own ck_sgemm. Linear layers (y = x W^T + b) live
// here too.
import COpenBLAS
import CKGemm
#if canImport(Glibc)
import Glibc
#endif

/// C = alpha * op(A) * op(B) + beta * C, row-major; op(X) is X or its transpose.
/// A is (M x K) after op, B is (K x N) after op, C is (M x N). A product that runs on one thread (inside a
/// piece of a batch, at one thread, or too small to split) runs `ck_sgemm` where the CPU has AVX-512.
@inline(__always)
public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                 b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if alpha == 1, beta == 0 || beta == 1, OwnGEMM.takes(m: m, n: n, k: k) {
        ck_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, a, lda, b, ldb, beta == 1 ? 1 : 0, c, ldc)
        return
    }
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

/// Whether single-thread products run our AVX-512 kernel (`ck_sgemm`) rather than OpenBLAS.
public enum OwnGEMM {
    /// Whether this build and CPU have the kernel.
    public static let available = ck_gemm_available() == 1

    /// Whether a product with n columns runs well in the kernel, which computes 16 columns at a time: at most a
    /// twelfth of its lanes wasted. OpenBLAS runs C's rows 16 at a time and wins at (64, 98, 64), a Winograd product
    /// of two unet-s samples (7 vectors for 98 columns: 1.16-1.32x OpenBLAS's time in a C loop; mlp-toy's products,
    /// 256 columns: 0.74-0.91x).
    @inline(__always)
    public static func suits(columns n: Int) -> Bool { (n + 15) / 16 * 16 * 12 <= n * 13 }

    /// Whether `gemm` runs an (m, n, k) product here: one that runs on one thread anyway (at one thread, inside a
    /// piece of a batch, or too small to split) and suits the kernel.
    @inline(__always)
    public static func takes(m: Int, n: Int, k: Int) -> Bool {
        let serial = Parallel.threadCount == 1 || Parallel.blasIsSerial || m * n * k < Parallel.serialGEMMWork
        return serial && runs && suits(columns: n)
    }

    /// CK_GEMM=openblas keeps OpenBLAS for every product, for A/B timing; tests set it.
    nonisolated(unsafe) public static var runs: Bool = {
        if let raw = getenv("CK_GEMM"), String(cString: raw) == "openblas" { return false }
        return available
    }()
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
    /// The bias rows are the GEMM's starting C (our kernel starts its accumulators from them; OpenBLAS gets C holding
    /// them, beta 1), and its gradient the column sums of G: no broadcast add and no general sum-to-shape, which
    /// together cost small networks about a seventh of their step.
    public func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(rank == 2 && weight.rank == 2 && shape[1] == weight.shape[1],
                     "linear: input \(shape) does not match weight \(weight.shape)")
        guard let bias else { return matmul(weight, transposeOther: true) }
        precondition(bias.shape == [weight.shape[0]], "linear: bias \(bias.shape) for weight \(weight.shape)")
        let n = shape[0], k = shape[1], m = weight.shape[0]
        let y = Tensor(shape: [n, m]) { out in
            let c = out.baseAddress!
            storage.withUnsafeBufferPointer { pa in
                weight.storage.withUnsafeBufferPointer { pw in
                    bias.storage.withUnsafeBufferPointer { pb in
                        if OwnGEMM.takes(m: n, n: m, k: k) {
                            ck_sgemm_bias(0, 1, n, m, k, pa.baseAddress!, k, pw.baseAddress!, k, pb.baseAddress!, c, m)
                            return
                        }
                        for row in 0..<n { (c + row * m).update(from: pb.baseAddress!, count: m) }
                        gemm(transposeA: false, transposeB: true, m: n, n: m, k: k, a: pa.baseAddress!, lda: k,
                             b: pw.baseAddress!, ldb: k, beta: 1, c: c, ldc: m)
                    }
                }
            }
        }
        let x = detached(), w = weight.detached()
        let needX = requiresGradient, needW = weight.requiresGradient, needB = bias.requiresGradient
        return y.recorded(inputs: [self, weight, bias], takesLeadingRows: true) { g in
            [needX ? g.matmul(w) : nil, needW ? g.productOfTranspose(withLeadingRowsOf: x) : nil, needB ? g.columnSums() : nil]
        }
    }

    /// selfᵀ x for self (R, M) and x (N, K), N >= R, over x's first R rows: a weight's gradient from a gradient
    /// that may cover only the leading rows of the layer's output.
    func productOfTranspose(withLeadingRowsOf x: Tensor) -> Tensor {
        precondition(rank == 2 && x.rank == 2 && shape[0] <= x.shape[0], "productOfTranspose: \(shape)ᵀ x rows of \(x.shape)")
        let r = shape[0], m = shape[1], k = x.shape[1]
        return Tensor(shape: [m, k]) { out in
            storage.withUnsafeBufferPointer { pg in
                x.storage.withUnsafeBufferPointer { px in
                    gemm(transposeA: true, transposeB: false, m: m, n: k, k: r, a: pg.baseAddress!, lda: m,
                         b: px.baseAddress!, ldb: k, c: out.baseAddress!, ldc: k)
                }
            }
        }
    }

    /// (N, M) -> (M): the sum of the rows. Differentiable.
    public func columnSums() -> Tensor {
        precondition(rank == 2, "columnSums: needs a 2-D tensor, got \(shape)")
        let n = shape[0], m = shape[1]
        var out = [Float](repeating: 0, count: m)
        storage.withUnsafeBufferPointer { pg in
            out.withUnsafeMutableBufferPointer { po in
                let g = pg.baseAddress!, o = po.baseAddress!
                for row in 0..<n {
                    let r = g + row * m
                    for j in 0..<m { o[j] += r[j] }
                }
            }
        }
        let inputShape = shape
        return Tensor(shape: [m], storage: out).recorded(inputs: [self]) { g in [g.broadcasted(to: inputShape)] }
    }
}
