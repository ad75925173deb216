// Class conditioning in the networks: the embedding's backward, "no class" as the default, a new
// conditional network equal to the unconditional one, and guidance as the stated mixture.
import XCTest
import CKTensor
import CKNN
import CKTestSupport

final class ClassEmbeddingTests: XCTestCase {
    /// The table's gradient by central differences: each row collects its own samples' upstream gradients.
    func testTableGradientByFiniteDifferences() {
        var rng = SplitMix64(seed: 4)
        let embedding = ClassEmbedding(classCount: 3, width: 5, name: "cemb", rng: &rng)
        let labels = [2, 0, 3, 2, 1]                 // 3 is the null class
        embedding.table.assign(Tensor.normal(shape: [4, 5], rng: &rng))
        let weights = Tensor.normal(shape: [5, 5], rng: &rng)
        func loss() -> Tensor { (embedding(labels) * weights).sum() }
        let analytic = Tape.gradients(of: loss(), wrt: [embedding.table.value])[0]
        let original = embedding.table.value, eps: Float = 1e-2
        var numeric = [Float](repeating: 0, count: original.count)
        for i in 0..<original.count {
            var plus = original, minus = original
            plus.storage[i] += eps; minus.storage[i] -= eps
            embedding.table.assign(plus); let lp = Tape.withoutRecording { loss().scalar }
            embedding.table.assign(minus); let lm = Tape.withoutRecording { loss().scalar }
            numeric[i] = (lp - lm) / (2 * eps)
        }
        embedding.table.assign(original)
        assertClose(analytic.storage, numeric, atol: 2e-3, rtol: 2e-2)
        // Row 2 appears twice: its gradient is the sum of rows 0 and 3 of the weights.
        assertClose(Array(analytic.storage[10..<15]), (0..<5).map { weights.storage[$0] + weights.storage[15 + $0] })
    }

    func testRowsAreTheLabelsVectors() {
        var rng = SplitMix64(seed: 1)
        let embedding = ClassEmbedding(classCount: 2, width: 3, name: "cemb", rng: &rng)
        embedding.table.assign(Tensor(shape: [3, 3], storage: [1, 2, 3, 4, 5, 6, 7, 8, 9]))
        XCTAssertEqual(embedding([1, 2, 0, 1]).storage, [4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(embedding.nullLabel, 2)
    }

    /// Gradients reach the class table through a whole network, by central differences on its entries.
    func testGradientReachesTheTableThroughTheUNet() {
        var rng = SplitMix64(seed: 6)
        let unet = UNetS(width: 16, classCount: 3, rng: &rng)
        let table = unet.cemb!.table
        table.assign(Tensor.normal(shape: table.shape, rng: &rng) * 0.5)
        let x = Tensor.normal(shape: [2, 1, 28, 28], rng: &rng), sigma = Tensor(shape: [2], storage: [0.5, 2])
        let weights = Tensor.normal(shape: x.shape, rng: &rng), labels = [2, 0]
        func loss() -> Tensor { (unet(x, sigma: sigma, target: nil, labels: labels) * weights).sum() }
        let analytic = Tape.gradients(of: loss(), wrt: [table.value])[0]
        let original = table.value, eps: Float = 1e-2, width = table.shape[1]
        for i in [2 * width + 1, 0 * width + 7, 1 * width + 3, 3 * width + 5] {
            var plus = original, minus = original
            plus.storage[i] += eps; minus.storage[i] -= eps
            table.assign(plus); let lp = Tape.withoutRecording { loss().scalar }
            table.assign(minus); let lm = Tape.withoutRecording { loss().scalar }
            table.assign(original)
            assertClose(analytic.storage[i], (lp - lm) / (2 * eps), atol: 3e-2, rtol: 3e-2, "d/dtable[\(i)]")
        }
        // Rows of classes not in the batch (1) and the null class (3) get no gradient.
        XCTAssertEqual(Array(analytic.storage[width..<(2 * width)]), Array(repeating: 0, count: width))
        XCTAssertEqual(Array(analytic.storage[(3 * width)...]), Array(repeating: 0, count: width))
    }

    /// The class table is drawn last, N(0, 1): every other weight is the unconditional network's, and with the
    /// table at zero the network computes the same function; drawn, the classes change it.
    func testClassTableIsDrawnLastAndOnlyAddsToTheEmbedding() {
        for model in [ModelName.unetXS, .mlpToy, .latentNet] {
            var a = SplitMix64(seed: 3), b = SplitMix64(seed: 3)
            let shape: [Int]? = model == .mlpToy ? nil : model == .latentNet ? [4, 7, 7] : [1, 28, 28]
            let plain = model.make(sampleShape: shape, rng: &a)
            let conditional = model.make(sampleShape: shape, classCount: 4, rng: &b)
            XCTAssertEqual(conditional.classCount, 4)
            XCTAssertEqual(conditional.parameters.count, plain.parameters.count + 1, "\(model)")
            for (p, q) in zip(plain.parameters, conditional.parameters) { XCTAssertEqual(p.value.storage, q.value.storage, p.name) }
            let table = conditional.parameters.last!
            XCTAssertEqual(table.shape, [5, 256])
            let mean = table.value.storage.reduce(0, +) / Float(table.value.count)
            let std = (table.value.storage.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(table.value.count)).squareRoot()
            XCTAssertEqual(mean, 0, accuracy: 0.1, "\(model)")
            XCTAssertEqual(std, 1, accuracy: 0.1, "\(model)")
            var rng = SplitMix64(seed: 8)
            let x = Tensor.normal(shape: [3] + plain.sampleShape, rng: &rng), sigma = Tensor(shape: [3], storage: [0.1, 1, 10])
            let drawn = conditional(x, sigma: sigma, target: nil, labels: [0, 3, 4]).storage
            XCTAssertNotEqual(drawn, plain(x, sigma: sigma).storage, "\(model)")
            table.assign(Tensor(zeros: table.shape))
            XCTAssertEqual(conditional(x, sigma: sigma, target: nil, labels: [0, 3, 4]).storage, plain(x, sigma: sigma).storage, "\(model)")
        }
    }

    /// A conditional network called without labels sees "no class"; with guidance w the output is
    /// F(null) + w (F(c) - F(null)), so w = 0 is unconditional and w = 1 conditional.
    func testNoLabelsMeanNullAndGuidanceMixes() {
        var rng = SplitMix64(seed: 5)
        let net = MLPToy(classCount: 2, rng: &rng)
        net.cemb!.table.assign(Tensor.normal(shape: [3, 256], rng: &rng))
        let x = Tensor.normal(shape: [4, 2], rng: &rng), sigma = Tensor(shape: [4], storage: [0.2, 0.7, 3, 20])
        let null = net(x, sigma: sigma, target: nil, labels: [2, 2, 2, 2])
        let one = net(x, sigma: sigma, target: nil, labels: [1, 1, 1, 1])
        XCTAssertEqual(net(x, sigma: sigma).storage, null.storage)
        XCTAssertNotEqual(one.storage, null.storage, "the class must change the output")
        XCTAssertEqual(LabelledNetwork(net, labels: .every(1))(x, sigma: sigma).storage, one.storage)
        XCTAssertEqual(LabelledNetwork(net, labels: .rows([1, 2, 1, 2]))(x, sigma: sigma).storage,
                       net(x, sigma: sigma, target: nil, labels: [1, 2, 1, 2]).storage)
        assertClose(LabelledNetwork(net, labels: .every(1), guidance: 0)(x, sigma: sigma).storage, null.storage)
        let w: Float = 3
        let guided = LabelledNetwork(net, labels: .every(1), guidance: w)(x, sigma: sigma)
        assertClose(guided.storage, zip(null.storage, one.storage).map { $0 + w * ($1 - $0) }, atol: 1e-4)
    }
}
