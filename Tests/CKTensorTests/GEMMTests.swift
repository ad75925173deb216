// The single-thread AVX-512 products (`ck_sgemm`, behind `gemm`) against a product in Double and against OpenBLAS,
// at shapes that cover every edge of the kernel: rows not a multiple of its 12, columns not a multiple of 16 or 32,
// depths past its 256-deep blocks, rows past its 384-row blocks, B read in place and packed, leading dimensions
// wider than the operand, accumulation into C.
import XCTest
import CKTensor
import CKGemm
import CKTestSupport

final class GEMMTests: XCTestCase {
    struct Case { let m, n, k: Int; let transposeA, transposeB, accumulate: Bool; let pad: Int }

    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (12, 32, 256), (13, 33, 257), (37, 45, 29), (64, 256, 256), (128, 256, 256), (256, 256, 64),
        (5, 2, 300), (130, 17, 513), (11, 16, 8), (24, 48, 7), (3, 100, 1), (40, 9, 1000), (64, 98, 64), (25, 784, 96),
        (14, 100, 700), (400, 33, 270),
    ]

    static var cases: [Case] {
        shapes.enumerated().flatMap { index, s in
            [false, true].flatMap { ta in [false, true].map { tb in
                Case(m: s.m, n: s.n, k: s.k, transposeA: ta, transposeB: tb, accumulate: (index + (ta ? 1 : 0)) % 2 == 0,
                     pad: (index % 3) * 5)
            } }
        }
    }

    /// op(A) op(B) (+ C) through the kernel itself (`own`) or OpenBLAS (through `gemm`), with the operands stored as
    /// the case says (rows `pad` wider than needed).
    func product(_ c: Case, own: Bool, rng: inout SplitMix64) -> (got: [Float], want: [Float], scale: [Double]) {
        let aRows = c.transposeA ? c.k : c.m, aColumns = c.transposeA ? c.m : c.k
        let bRows = c.transposeB ? c.n : c.k, bColumns = c.transposeB ? c.k : c.n
        let lda = aColumns + c.pad, ldb = bColumns + c.pad, ldc = c.n + c.pad
        let a = (0..<(aRows * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(bRows * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
        let start = (0..<(c.m * ldc)).map { _ in Float.random(in: -1...1, using: &rng) }
        var want = [Float](repeating: 0, count: c.m * c.n), scale = [Double](repeating: 0, count: c.m * c.n)
        for i in 0..<c.m {
            for j in 0..<c.n {
                var sum = c.accumulate ? Double(start[i * ldc + j]) : 0, size = abs(sum)
                for p in 0..<c.k {
                    let x = Double(c.transposeA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(c.transposeB ? b[j * ldb + p] : b[p * ldb + j])
                    sum += x * y
                    size += abs(x * y)
                }
                want[i * c.n + j] = Float(sum)
                scale[i * c.n + j] = size
            }
        }
        var out = start
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    if own {
                        ck_sgemm(c.transposeA ? 1 : 0, c.transposeB ? 1 : 0, c.m, c.n, c.k, pa.baseAddress!, lda, pb.baseAddress!, ldb,
                                 c.accumulate ? 1 : 0, pc.baseAddress!, ldc)
                    } else {
                        let before = OwnGEMM.runs
                        OwnGEMM.runs = false
                        defer { OwnGEMM.runs = before }
                        gemm(transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, a: pa.baseAddress!,
                             lda: lda, b: pb.baseAddress!, ldb: ldb, beta: c.accumulate ? 1 : 0, c: pc.baseAddress!, ldc: ldc)
                    }
                }
            }
        }
        for i in 0..<c.m {
            for j in c.n..<ldc {
                XCTAssertEqual(out[i * ldc + j], start[i * ldc + j], "\(c): wrote past column n in row \(i)")
            }
        }
        let got = (0..<c.m).flatMap { i in out[(i * ldc)..<(i * ldc + c.n)] }
        return (got, want, scale)
    }

    func testOwnKernelMatchesTheProductInDouble() throws {
        try XCTSkipUnless(OwnGEMM.available, "this CPU has no AVX-512: every product runs in OpenBLAS")
        var rng = SplitMix64(seed: 7)
        for c in Self.cases {
            let (got, want, scale) = product(c, own: true, rng: &rng)
            // Float32 products summed in a different order: a few ulps of the sum of magnitudes.
            var worst = 0.0
            for i in got.indices { worst = max(worst, abs(Double(got[i]) - Double(want[i])) / max(scale[i], 1e-30)) }
            XCTAssertLessThan(worst, 4e-7 * Double(c.k).squareRoot() + 1e-7, "\(c)")
        }
    }

    func testOwnKernelAndOpenBLASAgree() throws {
        try XCTSkipUnless(OwnGEMM.available, "this CPU has no AVX-512: every product runs in OpenBLAS")
        for c in Self.cases {
            var rng = SplitMix64(seed: 11)
            let own = product(c, own: true, rng: &rng).got
            rng = SplitMix64(seed: 11)
            let blas = product(c, own: false, rng: &rng).got
            assertClose(own, blas, atol: 2e-5 * Float(c.k).squareRoot(), rtol: 1e-5, "\(c)")
        }
    }

    func testTheSameProductTwiceIsTheSame() throws {
        try XCTSkipUnless(OwnGEMM.available, "this CPU has no AVX-512")
        let c = Case(m: 130, n: 17, k: 513, transposeA: true, transposeB: true, accumulate: true, pad: 3)
        var r1 = SplitMix64(seed: 3), r2 = SplitMix64(seed: 3)
        XCTAssertEqual(product(c, own: true, rng: &r1).got, product(c, own: true, rng: &r2).got)
    }

    /// `ck_sgemm_bias`: every row starts from the bias (no C read), at every shape and transposition, depth 0 included.
    func testBiasRowsStartTheProduct() throws {
        try XCTSkipUnless(OwnGEMM.available, "this CPU has no AVX-512")
        var rng = SplitMix64(seed: 13)
        for (index, s) in (Self.shapes + [(7, 20, 0)]).enumerated() {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let pad = index % 3 * 5
                let lda = (ta ? s.m : s.k) + pad, ldb = (tb ? s.k : s.n) + pad, ldc = s.n + pad
                let a = (0..<((ta ? s.k : s.m) * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                let b = (0..<((tb ? s.n : s.k) * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                let bias = (0..<s.n).map { _ in Float.random(in: -1...1, using: &rng) }
                var out = [Float](repeating: .nan, count: s.m * ldc)
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in bias.withUnsafeBufferPointer { pbias in
                    out.withUnsafeMutableBufferPointer { pc in
                        ck_sgemm_bias(ta ? 1 : 0, tb ? 1 : 0, s.m, s.n, s.k, pa.baseAddress!, lda, pb.baseAddress!, ldb,
                                      pbias.baseAddress!, pc.baseAddress!, ldc)
                    }
                } } }
                for i in 0..<s.m {
                    for j in 0..<ldc {
                        guard j < s.n else { XCTAssertTrue(out[i * ldc + j].isNaN, "\(s): wrote past column n"); continue }
                        var sum = Double(bias[j]), size = abs(sum)
                        for p in 0..<s.k {
                            let x = Double(ta ? a[p * lda + i] : a[i * lda + p]), y = Double(tb ? b[j * ldb + p] : b[p * ldb + j])
                            sum += x * y
                            size += abs(x * y)
                        }
                        XCTAssertLessThanOrEqual(abs(Double(out[i * ldc + j]) - sum), (4e-7 * Double(s.k).squareRoot() + 1e-7) * size,
                                                 "\(s) transposes \(ta) \(tb) at (\(i), \(j))")
                    }
                }
            }
        }
    }

    /// A Linear layer through the kernel (bias rows in its accumulators) equals OpenBLAS's (bias rows copied into C),
    /// for columns the kernel takes (64) and leaves (49).
    func testLinearWithTheKernelMatchesOpenBLAS() throws {
        try XCTSkipUnless(OwnGEMM.available, "this CPU has no AVX-512")
        var rng = SplitMix64(seed: 17)
        let before = OwnGEMM.runs
        defer { OwnGEMM.runs = before }
        for outputs in [64, 49] {
            let x = Tensor.normal(shape: [40, 300], rng: &rng), w = Tensor.normal(shape: [outputs, 300], rng: &rng)
            let b = Tensor.normal(shape: [outputs], rng: &rng)
            OwnGEMM.runs = true
            XCTAssertEqual(withThreads(1) { OwnGEMM.takes(m: 40, n: outputs, k: 300) }, outputs == 64)
            let own = withThreads(1) { x.linear(weight: w, bias: b).storage }
            OwnGEMM.runs = false
            let blas = withThreads(1) { x.linear(weight: w, bias: b).storage }
            assertClose(own, blas, atol: 2e-4, rtol: 1e-5, "Linear 300 -> \(outputs)")
        }
    }

    func transposed(_ t: Tensor) -> Tensor {
        let rows = t.shape[0], columns = t.shape[1]
        return Tensor(shape: [columns, rows], storage: (0..<(rows * columns)).map { i in t.storage[(i % rows) * columns + i / rows] })
    }

    /// `gemm` hands the kernel the products it suits and passes its arguments through: a matmul with each operand
    /// transposed or not equals OpenBLAS's.
    func testGemmRoutesSuitableProductsToTheKernel() throws {
        try XCTSkipUnless(OwnGEMM.available, "this CPU has no AVX-512")
        XCTAssertTrue(OwnGEMM.suits(columns: 256) && OwnGEMM.suits(columns: 784) && OwnGEMM.suits(columns: 196))
        XCTAssertFalse(OwnGEMM.suits(columns: 2) || OwnGEMM.suits(columns: 49) || OwnGEMM.suits(columns: 98))
        var rng = SplitMix64(seed: 5)
        let x = Tensor(shape: [40, 70], storage: (0..<2800).map { _ in Float.random(in: -1...1, using: &rng) })
        let y = Tensor(shape: [70, 64], storage: (0..<4480).map { _ in Float.random(in: -1...1, using: &rng) })
        let before = OwnGEMM.runs
        defer { OwnGEMM.runs = before }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = ta ? transposed(x) : x, b = tb ? transposed(y) : y
            OwnGEMM.runs = true
            let own = a.matmul(b, transposeSelf: ta, transposeOther: tb).storage
            OwnGEMM.runs = false
            let blas = a.matmul(b, transposeSelf: ta, transposeOther: tb).storage
            assertClose(own, blas, atol: 1e-4, rtol: 1e-5, "transposeSelf \(ta), transposeOther \(tb)")
        }
    }
}
