// Batch transforms inside training: assigned noise stays Gaussian; runs with them stay deterministic.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKTestSupport

final class BatchTransformTests: XCTestCase {
    /// A permutation of iid N(0, 1) rows is still iid N(0, 1) in distribution over batch positions:
    /// check mean, variance and kurtosis of the assigned noise pooled over many batches, and that the
    /// assignment really moved noise towards the data.
    func testAssignedNoiseKeepsGaussianMarginals() {
        var rng = SplitMix64(seed: 21)
        var data = SplitMix64(seed: 22)
        var sum = 0.0, sum2 = 0.0, sum4 = 0.0, count = 0.0
        var assignedDistance = 0.0, freshDistance = 0.0
        for _ in 0..<40 {
            let x = Toy2D.checkerboard.sample(count: 64, rng: &data).reshaped([64, 2]) * 2
            let (batch, noise) = BatchTransforms(assignment: .exact).apply(to: x, rng: &rng)
            XCTAssertEqual(batch.storage, x.storage, "the data keeps its order")
            let z = noise!
            for v in z.storage { let d = Double(v); sum += d; sum2 += d * d; sum4 += d * d * d * d; count += 1 }
            let fresh = Tensor.normal(like: x, rng: &rng)
            for i in 0..<64 {
                assignedDistance += hypot(Double(z.storage[2 * i] - x.storage[2 * i]), Double(z.storage[2 * i + 1] - x.storage[2 * i + 1]))
                freshDistance += hypot(Double(fresh.storage[2 * i] - x.storage[2 * i]), Double(fresh.storage[2 * i + 1] - x.storage[2 * i + 1]))
            }
        }
        let mean = sum / count, variance = sum2 / count - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 0.05)          // 5120 values: standard error 0.014
        XCTAssertEqual(variance, 1, accuracy: 0.08)
        XCTAssertEqual(sum4 / count / (variance * variance), 3, accuracy: 0.35)
        XCTAssertLessThan(assignedDistance, 0.8 * freshDistance, "assignment should pair data with nearer noise")
    }

    func testBSSAppliesOnlyToImages() {
        var rng = SplitMix64(seed: 1)
        let points = Tensor.normal(shape: [8, 2], rng: &rng)
        XCTAssertEqual(BatchTransforms(bssRatio: 0.2).apply(to: points, rng: &rng).batch.storage, points.storage)
        let images = Tensor.uniform(shape: [4, 1, 8, 8], low: -1, high: 1, rng: &rng)
        let (out, noise) = BatchTransforms(bssRatio: 0.25).apply(to: images, rng: &rng)
        XCTAssertNil(noise, "no assignment: the loss draws its own noise")
        XCTAssertNotEqual(out.storage, images.storage)
    }

    func testResumeIsExactWithImmiscibleAndBSS() throws {
        var config = TrainingConfig(method: .ict)
        config.model = .unetXS
        config.data = "shapes"
        config.sampleShape = [3, 32, 32]
        config.iterations = 6
        config.batchSize = 8
        config.learningRate = 2e-4
        config.immiscible = .quantized
        config.bssRatio = 0.1
        config.seed = 5
        let straight = try Trainer(config: config)
        try train(straight, until: 6)
        let first = try Trainer(config: config)
        let run = try temporaryRun("bt")
        defer { try? FileManager.default.removeItem(at: run.url) }
        try train(first, until: 3, in: run)
        let resumed = try Trainer.restore(from: try Checkpoint.read(from: run.checkpoint), path: run.checkpoint.path)
        XCTAssertEqual(resumed.config, config)
        try train(resumed, until: 6, in: run)
        for (a, b) in zip(straight.network.parameters, resumed.network.parameters) {
            XCTAssertEqual(a.value.storage, b.value.storage, a.name)
        }
    }
}
