// Reference networks: parameter counts pinned to the PyTorch port's, names, shapes, and gradients end to end.
import XCTest
import CKTensor
@testable import CKNN
import CKTestSupport

final class ModelTests: XCTestCase {
    /// `python3 ../shared/peers/torch_ict.py params` prints {"mlp-toy": 346882, "unet-s": 1185249}.
    func testParameterCountsMatchThePyTorchPort() {
        var rng = SplitMix64(seed: 0)
        XCTAssertEqual(MLPToy(rng: &rng).parameterCount, 346_882)
        XCTAssertEqual(UNetS(rng: &rng).parameterCount, 1_185_249)
    }

    func testParameterNamesAreUniqueAndFollowThePort() {
        var rng = SplitMix64(seed: 0)
        let names = UNetS(rng: &rng).parameters.map(\.name)
        XCTAssertEqual(Set(names).count, names.count)
        for expected in ["temb.l1.weight", "conv_in.weight", "rb2.skip.weight", "up_rb6.gn2.bias", "conv_out.bias"] {
            XCTAssertTrue(names.contains(expected), expected)
        }
        XCTAssertFalse(names.contains("rb1.skip.weight"), "ResBlock(32->32) has no 1x1 skip")
    }

    func testEmbeddingFeatures() {
        // t = 0.25 ln(sigma); k = 0 has frequency 1: features cos(1000 t), sin(1000 t).
        let sigma: Float = 1.3
        let f = NoiseEmbedding.features(sigma: Tensor(shape: [1], storage: [sigma]))
        XCTAssertEqual(f.shape, [1, 64])
        let t = 0.25 * logf(sigma)
        assertClose(f.storage[0], cosf(1000 * t), atol: 1e-5)
        assertClose(f.storage[32], sinf(1000 * t), atol: 1e-5)
        // k = 31: frequency exp(-ln(10000) 31/32)
        let f31 = expf(-logf(10000) * 31 / 32)
        assertClose(f.storage[31], cosf(1000 * t * f31), atol: 1e-5)
    }

    func testForwardShapes() {
        var rng = SplitMix64(seed: 1)
        let toy = MLPToy(rng: &rng), unet = UNetS(rng: &rng)
        let sigma = Tensor(shape: [3], storage: [0.01, 1, 80])
        XCTAssertEqual(toy(Tensor.normal(shape: [3, 2], rng: &rng), sigma: sigma).shape, [3, 2])
        XCTAssertEqual(unet(Tensor.normal(shape: [3, 1, 28, 28], rng: &rng), sigma: sigma).shape, [3, 1, 28, 28])
    }

    /// Central differences on a few coordinates of parameters deep in each network and of the input:
    /// every layer's backward composes correctly.
    func testGradientsThroughWholeNetworks() {
        var rng = SplitMix64(seed: 2)
        let toy = MLPToy(rng: &rng)
        checkSpots(network: toy, input: Tensor.normal(shape: [4, 2], rng: &rng), names: ["temb.l1.weight", "hidden.1.weight", "out.bias"])
        let unet = UNetS(rng: &rng)
        checkSpots(network: unet, input: Tensor.normal(shape: [2, 1, 28, 28], rng: &rng),
                   names: ["conv_in.weight", "rb2.skip.weight", "mid1.gn2.weight", "up_rb3.conv1.bias", "temb.l2.weight", "conv_out.weight"])
    }

    /// A batch's distinct conditions, numbered in order of first use; the target time and the label count in them.
    func testDistinctConditions() {
        let sigma = Tensor(shape: [6], storage: [0.5, 2, 0.5, 0.5, 80, 2])
        let plain = DistinctConditions(sigma: sigma, target: nil, labels: nil)
        XCTAssertEqual(plain.sigma.storage, [0.5, 2, 80])
        XCTAssertEqual(plain.rowIndex, [0, 1, 0, 0, 2, 1])
        let levels = Tensor(shape: [8], storage: [0.5, 2, 0.5, 0.5, 80, 2, 2, 80])
        let target = Tensor(shape: [8], storage: [0.1, 1, 0.2, 0.1, 1, 1, 1, 1])
        let both = DistinctConditions(sigma: levels, target: target, labels: [3, 3, 3, 4, 3, 3, 3, 3])
        XCTAssertEqual(both.rowIndex, [0, 1, 2, 3, 4, 1, 1, 4])
        XCTAssertEqual(both.labels, [3, 3, 3, 4, 3])
        XCTAssertEqual(both.target?.storage, [0.1, 1, 0.2, 0.1, 1])
        XCTAssertNil(DistinctConditions(sigma: Tensor(shape: [3], storage: [1, 2, 3]), target: nil, labels: nil).rowIndex,
                     "every row its own: nothing to spread")
        let few = DistinctConditions(sigma: Tensor(shape: [8], storage: [1, 2, 3, 4, 5, 6, 7, 1]), target: nil, labels: nil)
        XCTAssertNil(few.rowIndex, "7 conditions of 8 rows: too few repeats to pay")
        XCTAssertEqual(few.sigma.count, 8)
    }

    /// mlp-toy computes its time embedding once per distinct noise level: on a batch whose levels repeat, its outputs
    /// and parameters' gradients are those of its rows run one at a time (then each row is its own condition).
    func testRepeatedNoiseLevelsGiveTheRowsOwnResults() {
        var rng = SplitMix64(seed: 3)
        let toy = MLPToy(rng: &rng)
        let levels: [Float] = [0.5, 2, 0.5, 0.5, 80, 2, 0.002, 80]
        let x = Tensor.normal(shape: [8, 2], rng: &rng), w = Tensor.normal(shape: [8, 2], rng: &rng)
        let parameters = toy.parameters.map(\.value)
        XCTAssertNotNil(DistinctConditions(sigma: Tensor(shape: [8], storage: levels), target: nil, labels: nil).rowIndex,
                        "4 levels in 8 rows: the embedding runs on 4")
        let y = toy(x, sigma: Tensor(shape: [8], storage: levels))
        let batch = Tape.gradients(of: (y * w).sum(), wrt: parameters)
        var outputs: [Float] = [], summed = parameters.map { Tensor(zeros: $0.shape) }
        for r in 0..<8 {
            let row = toy(x.detachedRows(r..<(r + 1)), sigma: Tensor(shape: [1], storage: [levels[r]]))
            outputs += row.storage
            let gradients = Tape.gradients(of: (row * w.detachedRows(r..<(r + 1))).sum(), wrt: parameters)
            for k in summed.indices { summed[k].addInPlace(gradients[k]) }
        }
        assertClose(y.storage, outputs, atol: 1e-6, rtol: 1e-6, "outputs")
        for (k, p) in toy.parameters.enumerated() {
            assertClose(batch[k].storage, summed[k].storage, atol: 1e-5, rtol: 1e-4, "gradient of \(p.name)")
        }
    }

    private func checkSpots(network: some Backbone, input: Tensor, names: [String], file: StaticString = #filePath, line: UInt = #line) {
        let sigma = Tensor(shape: [input.shape[0]], storage: (0..<input.shape[0]).map { 0.3 + Float($0) })
        var rng = SplitMix64(seed: 9)
        let weights = Tensor.normal(shape: input.shape, rng: &rng)
        func loss(_ x: Tensor) -> Tensor { (network(x, sigma: sigma) * weights).sum() }
        let x = input.trackingGradients()
        let params = network.parameters.filter { names.contains($0.name) }
        XCTAssertEqual(params.count, names.count, file: file, line: line)
        let grads = Tape.gradients(of: loss(x), wrt: [x] + params.map(\.value))
        let eps: Float = 1e-2
        // the input
        for i in stride(from: 0, to: input.count, by: max(1, input.count / 5)) {
            var plus = input, minus = input
            plus.storage[i] += eps; minus.storage[i] -= eps
            let numeric = Tape.withoutRecording { (loss(plus).scalar - loss(minus).scalar) / (2 * eps) }
            assertClose(grads[0].storage[i], numeric, atol: 3e-2, rtol: 3e-2, "d/dx[\(i)]", file: file, line: line)
        }
        for (k, p) in params.enumerated() {
            let original = p.value
            for i in [0, p.value.count / 2, p.value.count - 1] {
                var plus = original, minus = original
                plus.storage[i] += eps; minus.storage[i] -= eps
                p.assign(plus); let lp = Tape.withoutRecording { loss(input).scalar }
                p.assign(minus); let lm = Tape.withoutRecording { loss(input).scalar }
                p.assign(original)
                assertClose(grads[k + 1].storage[i], (lp - lm) / (2 * eps), atol: 3e-2, rtol: 3e-2, "d/d\(p.name)[\(i)]", file: file, line: line)
            }
        }
    }
}
