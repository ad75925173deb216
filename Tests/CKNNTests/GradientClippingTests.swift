// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.
import XCTest
import CKTensor
import CKTestSupport
@testable import CKNN

final class GradientClippingTests: XCTestCase {
    func testClipsToMaxNormAndReturnsTheNormBefore() {
        // Joint norm of [3, 4] and [12]: sqrt(9 + 16 + 144) = 13.
        var grads = [Tensor(shape: [2], storage: [3, 4]), Tensor(shape: [1], storage: [12])]
        let norm = clipGradientNorm(&grads, maxNorm: 1)
        assertClose(norm, 13, atol: 1e-6)
        // Scaled by 1 / (13 + 1e-6): each value divided by 13, the direction kept.
        assertClose(grads.flatMap(\.storage), [3.0 / 13, 4.0 / 13, 12.0 / 13], atol: 1e-6)
        let after = grads.flatMap(\.storage).reduce(0) { $0 + Double($1 * $1) }.squareRoot()
        assertClose(after, 1, atol: 1e-6, rtol: 0)
    }

    func testUnchangedWhenBelowMaxNorm() {
        var grads = [Tensor(shape: [2, 2], storage: [0.1, -0.2, 0.3, 0.0]), Tensor(shape: [1], storage: [-0.5])]
        let before = grads.map(\.storage)
        let norm = clipGradientNorm(&grads, maxNorm: 1)
        assertClose(norm, Float((0.01 + 0.04 + 0.09 + 0.25).squareRoot()), atol: 1e-6)
        XCTAssertEqual(grads.map(\.storage), before)
    }

    func testLargeGradientsNormMatchesADoubleSum() {
        var rng = SplitMix64(seed: 4)
        var grads = [Tensor.normal(shape: [100_003], rng: &rng), Tensor.normal(shape: [7], rng: &rng), Tensor(zeros: [0])]
        let want = grads.flatMap(\.storage).reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let norm = clipGradientNorm(&grads, maxNorm: 5)
        assertClose(Double(norm), want, atol: 0, rtol: 1e-6)
        let after = grads.flatMap(\.storage).reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        assertClose(after, 5, atol: 0, rtol: 1e-5)
    }
}
