// Dropout: determinism from the generator, keep rate, scaling, and a backward that reuses the mask.
import XCTest
import CKTensor
import CKTestSupport

final class DropoutTests: XCTestCase {
    func testSameGeneratorStateGivesSameMask() {
        var rng = SplitMix64(seed: 1)
        let x = Tensor.normal(shape: [4, 8, 5, 5], rng: &rng)
        let saved = rng
        let a = x.dropout(rate: 0.3, rng: &rng)
        XCTAssertNotEqual(rng, saved, "the mask is drawn from rng")
        var restored = saved
        let b = x.dropout(rate: 0.3, rng: &restored)
        XCTAssertEqual(a.storage, b.storage)
        XCTAssertEqual(restored, rng, "both draws advance the generator alike")
        let c = x.dropout(rate: 0.3, rng: &rng)                    // the next state: another mask
        XCTAssertNotEqual(a.storage, c.storage)
    }

    func testKeepFractionAndScaling() {
        let x = Tensor(repeating: 1, shape: [200_001])              // odd count: the last value uses half a draw
        for rate: Float in [0.1, 0.3, 0.75] {
            var rng = SplitMix64(seed: 2)
            let y = x.dropout(rate: rate, rng: &rng)
            let kept = y.storage.filter { $0 != 0 }
            // Binomial(n, 1 - rate): standard deviation of the fraction below 0.0011, so 0.005 is > 4 sigma.
            XCTAssertEqual(Double(kept.count) / Double(x.count), Double(1 - rate), accuracy: 0.005, "rate \(rate)")
            XCTAssertTrue(kept.allSatisfy { $0 == 1 / (1 - rate) }, "kept values are scaled by 1 / (1 - rate)")
            XCTAssertEqual(Double(y.mean().scalar), 1, accuracy: 0.01, "expectation kept at rate \(rate)")
        }
    }

    func testGradientUsesTheMask() {
        // y = x * m / (1 - rate), so dL/dx = g * m / (1 - rate); with x = 1 that is g * y.
        var rng = SplitMix64(seed: 3)
        let x = Tensor(repeating: 1, shape: [6, 50]).trackingGradients()
        let g = Tensor.normal(shape: [6, 50], rng: &rng)
        let y = x.dropout(rate: 0.5, rng: &rng)
        let dx = Tape.gradients(of: y, seed: g, wrt: [x])[0]
        assertClose(dx.storage, zip(g.storage, y.storage).map { $0 * $1 }, atol: 0, rtol: 0)
        XCTAssertTrue(y.storage.contains(0) && y.storage.contains(2), "both masked and kept values occur")
        // Central differences with a fixed generator in the closure: every evaluation sees the same mask.
        gradCheck(shapes: [[3, 7]]) { xs in
            var rng = SplitMix64(seed: 4)
            return xs[0].dropout(rate: 0.4, rng: &rng)
        }
    }

    func testRateZeroIsIdentity() {
        var rng = SplitMix64(seed: 5)
        let x = Tensor.normal(shape: [3, 4], rng: &rng).trackingGradients()
        let saved = rng
        let y = x.dropout(rate: 0, rng: &rng)
        XCTAssertEqual(y.storage, x.storage)
        XCTAssertEqual(rng, saved, "rate 0 draws nothing")
        let g = Tensor.normal(shape: [3, 4], rng: &rng)
        XCTAssertEqual(Tape.gradients(of: y, seed: g, wrt: [x])[0].storage, g.storage)
    }
}
