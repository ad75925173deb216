// Log-softmax and cross-entropy: hand-computed values, stability at large logits, gradient checks.
import XCTest
import CKTensor
import CKTestSupport

final class SoftmaxTests: XCTestCase {
    func testLogSoftmaxValues() {
        // Row [0, ln 3]: sum exp = 1 + 3 = 4, so y = [-ln 4, ln 3 - ln 4]. Row [1, 1]: y = [-ln 2, -ln 2].
        let x = Tensor(shape: [2, 2], storage: [0, logf(3), 1, 1])
        assertClose(x.logSoftmax().storage, [-logf(4), logf(3) - logf(4), -logf(2), -logf(2)], atol: 1e-6)
        assertClose(x.softmax().storage, [0.25, 0.75, 0.5, 0.5], atol: 1e-6)
    }

    func testLargeLogitsDoNotOverflow() {
        // exp(1000) is inf in float32; with the max subtracted, y = [0, -1000] up to exp(-1000) = 0.
        let y = Tensor(shape: [1, 2], storage: [1000, 0]).logSoftmax()
        XCTAssertTrue(y.isFinite, "\(y)")
        assertClose(y.storage, [0, -1000], atol: 1e-3)
        let z = Tensor(shape: [1, 3], storage: [-1000, -1000, -1000]).logSoftmax()
        assertClose(z.storage, [Float](repeating: -logf(3), count: 3), atol: 1e-5)
    }

    func testCrossEntropyValueAndGradient() {
        // logits [[0, ln 3], [2, 2]], labels [1, 0]: loss = -(ln(3/4) + ln(1/2)) / 2;
        // d loss / d logits = (softmax - onehot) / 2 = [[0.25, -0.25], [-0.5, 0.5]] / 2.
        let x = Tensor(shape: [2, 2], storage: [0, logf(3), 2, 2]).trackingGradients()
        let loss = x.crossEntropy(labels: [1, 0])
        assertClose(loss.scalar, -(logf(0.75) + logf(0.5)) / 2, atol: 1e-6)
        let g = Tape.gradients(of: loss, wrt: [x])[0]
        assertClose(g.storage, [0.125, -0.125, -0.25, 0.25], atol: 1e-6)
    }

    func testGradients() {
        gradCheck(shapes: [[3, 5]]) { $0[0].logSoftmax() }
        gradCheck(shapes: [[2, 3, 4]]) { $0[0].logSoftmax() }
        gradCheck(shapes: [[3, 5]]) { $0[0].softmax() }
        gradCheck(inputs: [Tensor(shape: [4, 3], storage: (0..<12).map { Float($0 % 5) * 0.7 - 1.3 })]) {
            $0[0].crossEntropy(labels: [2, 0, 1, 2])
        }
        gradCheck(shapes: [[6, 10]], seed: 7) { ($0[0] * 3).crossEntropy(labels: [0, 9, 3, 3, 5, 1]) }
    }
}
