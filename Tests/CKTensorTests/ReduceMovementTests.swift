// Reductions, reshapes, concatenation, slicing, permutation, upsampling, matmul.
import XCTest
import CKTensor
import CKTestSupport

final class ReduceMovementTests: XCTestCase {
    func testSumAndMeanAlongAxes() {
        let x = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        assertClose(x.sum(alongAxes: [0]).storage, [5, 7, 9])
        assertClose(x.mean(alongAxes: [1]).storage, [2, 5])
        XCTAssertEqual(x.sum(alongAxes: [1], keepingDimensions: true).shape, [2, 1])
        assertClose(x.mean().scalar, 3.5)
    }

    func testReductionGradients() {
        gradCheck(shapes: [[2, 3, 4]]) { $0[0].sum(alongAxes: [1]) }
        gradCheck(shapes: [[2, 3, 4]]) { $0[0].mean(alongAxes: [0, 2], keepingDimensions: true) }
        gradCheck(shapes: [[4, 5]]) { $0[0].mean() }
        gradCheck(shapes: [[2, 3, 4]]) { $0[0].broadcasted(to: [5, 2, 3, 4]) }
    }

    func testMovementGradients() {
        gradCheck(shapes: [[2, 3, 2, 2], [2, 1, 2, 2]]) { Tensor.concatenate($0, axis: 1) }
        gradCheck(shapes: [[4, 3]]) { $0[0].slice(1..<3) }
        gradCheck(shapes: [[2, 3, 4]]) { $0[0].permuted([2, 0, 1]) }
        gradCheck(shapes: [[2, 3, 4]]) { $0[0].reshaped([6, -1]) }
        gradCheck(shapes: [[2, 3, 2, 3]]) { $0[0].upsampledNearest2x() }
    }

    /// Rows by index, repeated and left out: values, and gradients (a repeated row's add up) by central differences.
    func testRowsAtIndices() {
        let x = Tensor(shape: [3, 2], storage: [1, 2, 3, 4, 5, 6])
        assertClose(x.rows(at: [2, 0, 2, 1]).storage, [5, 6, 1, 2, 5, 6, 3, 4])
        XCTAssertEqual(x.rows(at: []).shape, [0, 2])
        gradCheck(shapes: [[4, 3]]) { $0[0].rows(at: [1, 1, 3, 0, 1]) }
        gradCheck(shapes: [[3, 2, 2]]) { $0[0].rows(at: [2, 2]) }
    }

    func testConcatenateValues() {
        let a = Tensor(shape: [1, 2, 1, 1], storage: [1, 2]), b = Tensor(shape: [1, 1, 1, 1], storage: [3])
        assertClose(Tensor.concatenate([a, b], axis: 1).storage, [1, 2, 3])
    }

    func testUpsampleValues() {
        let x = Tensor(shape: [1, 1, 1, 2], storage: [1, 2])
        assertClose(x.upsampledNearest2x().storage, [1, 1, 2, 2, 1, 1, 2, 2])
    }

    func testMatmulValuesAndGradients() {
        // [[1,2],[3,4]] x [[5],[6]] = [[17],[39]]
        let a = Tensor(shape: [2, 2], storage: [1, 2, 3, 4]), b = Tensor(shape: [2, 1], storage: [5, 6])
        assertClose(a.matmul(b).storage, [17, 39])
        for ta in [false, true] {
            for tb in [false, true] {
                gradCheck(shapes: [ta ? [4, 3] : [3, 4], tb ? [5, 4] : [4, 5]]) {
                    $0[0].matmul($0[1], transposeSelf: ta, transposeOther: tb)
                }
            }
        }
        gradCheck(shapes: [[3, 4], [5, 4], [5]]) { $0[0].linear(weight: $0[1], bias: $0[2]) }
        // The fused bias equals the product plus a broadcast bias, at sizes past the GEMM's blocking.
        var rng = SplitMix64(seed: 12)
        for (n, k, m) in [(1, 1, 1), (7, 3, 5), (129, 65, 257)] {
            let x = Tensor.normal(shape: [n, k], rng: &rng), w = Tensor.normal(shape: [m, k], rng: &rng)
            let b = Tensor.normal(shape: [m], rng: &rng)
            assertClose(x.linear(weight: w, bias: b).storage, (x.matmul(w, transposeOther: true) + b).storage, atol: 1e-4)
        }
        gradCheck(shapes: [[6, 4]]) { $0[0].columnSums() }
        assertClose(Tensor(shape: [2, 3], storage: [1, 2, 3, 10, 20, 30]).columnSums().storage, [11, 22, 33])
    }

    func testRandomIsDeterministicAndStandard() {
        var r1 = SplitMix64(seed: 42), r2 = SplitMix64(seed: 42)
        let a = Tensor.normal(shape: [10000], rng: &r1), b = Tensor.normal(shape: [10000], rng: &r2)
        XCTAssertEqual(a.storage, b.storage)
        let mean = a.storage.reduce(0, +) / 10000
        let variance = a.storage.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 10000
        XCTAssertEqual(mean, 0, accuracy: 0.04)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }
}
