// End to end: training lowers the toy metric; a resumed run equals the uninterrupted one bit for bit;
// a non-finite loss stops before the weights change.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKEvaluation
import CKTraining
import CKTestSupport

final class TrainingTests: XCTestCase {
    private func toyConfig(iterations: Int) -> TrainingConfig {
        var c = TrainingConfig(method: .ict)
        c.model = .mlpToy
        c.data = "toy:checkerboard"
        c.sampleShape = [2]
        c.iterations = iterations
        c.batchSize = 128
        c.learningRate = 3e-4
        c.seed = 11
        return c
    }

    private func makeTrainer(_ config: TrainingConfig) throws -> Trainer { try Trainer(config: config) }

    func testResumedRunEqualsUninterruptedRun() throws {
        try checkResumeEqualsUninterruptedRun(toyConfig(iterations: 100))
    }

    func testResumedRunWithLearningRateDecayEqualsUninterruptedRun() throws {
        var config = toyConfig(iterations: 100)
        config.learningRateDecay = 0.7
        try checkResumeEqualsUninterruptedRun(config)
    }

    func testResumedReplannedRunEqualsUninterruptedRun() throws {
        // The run resumes at 50, before its count changed at 70, and crosses that change after the resume.
        var config = toyConfig(iterations: 100)
        config.learningRateDecay = 0.7
        config.replans = [Replan(step: 30, previousIterations: 60), Replan(step: 70, previousIterations: 90)]
        try checkResumeEqualsUninterruptedRun(config)
    }

    func testLearningRateDecayReachesTheOptimizer() throws {
        var config = toyConfig(iterations: 10)
        config.learningRateDecay = 0.3
        let trainer = try makeTrainer(config)
        var seen: [Float] = []
        for _ in 0..<10 {
            try train(trainer, until: trainer.step + 1)
            seen.append(trainer.optimizer.learningRate)
        }
        // 30% of 10 iterations: the last three step at 3/4, 2/4 and 1/4 of the rate, the first seven at all of it.
        let base = config.learningRate
        XCTAssertEqual(seen, Array(repeating: base, count: 7) + [0.75 * base, 0.5 * base, 0.25 * base])
    }

    private func checkResumeEqualsUninterruptedRun(_ config: TrainingConfig) throws {
        let straight = try makeTrainer(config)
        try train(straight, until: 100)

        let first = try makeTrainer(config)
        let run = try temporaryRun("resume")
        defer { try? FileManager.default.removeItem(at: run.url) }
        try train(first, until: 50, in: run)
        let resumed = try Trainer.restore(from: try Checkpoint.read(from: run.checkpoint), path: run.checkpoint.path)
        XCTAssertEqual(resumed.step, 50)
        try train(resumed, until: 100, in: run)
        XCTAssertEqual(try String(contentsOf: run.log, encoding: .utf8).split(separator: "\n").count, 101,
                       "the log holds each of the 100 iterations once, after its header")

        for (a, b) in zip(straight.network.parameters, resumed.network.parameters) {
            XCTAssertEqual(a.value.storage, b.value.storage, "online \(a.name) differs after resume")
        }
        XCTAssertEqual(straight.ema.values.map(\.storage), resumed.ema.values.map(\.storage), "EMA differs after resume")
        XCTAssertEqual(straight.lastLoss, resumed.lastLoss)
    }

    func testShortToyRunLowersSlicedW2() throws {
        var config = toyConfig(iterations: 1500)
        config.emaDecay = 0.99
        let trainer = try makeTrainer(config)
        var rng = SplitMix64(seed: 5)
        let reference = Toy2D.checkerboard.sample(count: 2048, rng: &rng)
        func metric() throws -> Double {
            let samples = try trainer.withEMAWeights {
                try sampleConsistency(network: trainer.network, count: 2048, sigmas: [80], seed: 3)
            }
            return slicedWasserstein2(samples, reference)
        }
        let before = try metric()
        try train(trainer, until: config.iterations)
        let after = try metric()
        // An untrained network maps noise to a blob far from the board; training must bring it within half.
        XCTAssertLessThan(after, 0.5 * before, "sliced W2 before \(before), after \(after)")
        XCTAssertLessThan(after, 0.15, "sliced W2 after training \(after)")
    }

    func testNonFiniteLossStopsBeforeTheUpdate() throws {
        let trainer = try makeTrainer(toyConfig(iterations: 10))
        let before = trainer.network.parameters.map(\.value.storage)
        var rng = SplitMix64(seed: 1)
        let poisoned = Tensor(shape: [4, 2], storage: [0, 0, .nan, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try trainer.trainStep(batch: poisoned, rng: &rng)) { error in
            guard case .nonFiniteLoss(let iteration, let loss)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(iteration, 0)
            XCTAssertTrue(loss.isNaN)
        }
        XCTAssertEqual(trainer.network.parameters.map(\.value.storage), before)
        XCTAssertEqual(trainer.step, 0)
    }

    func testSamplingIsPerSampleDeterministic() throws {
        var rng = SplitMix64(seed: 0)
        let network = MLPToy(rng: &rng)
        let a = try sampleConsistency(network: network, count: 10, sigmas: [80, 0.8], seed: 4)
        let b = try sampleConsistency(network: network, count: 3, sigmas: [80, 0.8], seed: 4, batchSize: 2)
        // Same noise per sample at any count or batch size; BLAS blocking may move the last bit.
        assertClose(Array(a.storage.prefix(6)), b.storage, atol: 1e-5, rtol: 1e-5, "sample k must not depend on count or batch size")
        let again = try sampleConsistency(network: network, count: 10, sigmas: [80, 0.8], seed: 4)
        XCTAssertEqual(a.storage, again.storage, "same call, same bits")
        let other = try sampleConsistency(network: network, count: 10, sigmas: [80, 0.8], seed: 5)
        XCTAssertNotEqual(a.storage, other.storage)
        XCTAssertThrowsError(try sampleConsistency(network: network, count: 0, sigmas: [80], seed: 0))
        XCTAssertThrowsError(try sampleConsistency(network: network, count: 2, sigmas: [0.8, 80], seed: 0))
    }

    /// Weights that overflow (finite in the file, infinite in the arithmetic) give NaN samples: an error that
    /// says so, never NaN pictures with success.
    func testSamplingThatOverflowsIsAnError() throws {
        var rng = SplitMix64(seed: 0)
        let network = MLPToy(rng: &rng)
        for p in network.parameters { p.assign(p.value * 1e30) }
        let plan = SamplingPlan(kind: .consistency, steps: 1)
        XCTAssertThrowsError(try plan.sample(network: network, count: 4, seed: 1, context: SamplingContext())) { error in
            guard case .nonFiniteSamples(let bad, let total)? = error as? SamplingError else { return XCTFail("\(error)") }
            XCTAssertEqual(total, 8)
            XCTAssertGreaterThan(bad, 0)
            XCTAssertTrue("\(error)".contains("\(bad) of 8"), "\(error)")
        }
    }

    func testRestoreRejectsForeignCheckpoint() throws {
        var c = Checkpoint()
        c.append([("w", Tensor(zeros: [2]))])
        XCTAssertThrowsError(try Trainer.restore(from: c, path: "x.safetensors")) { error in
            XCTAssertEqual(error as? TrainingError, .noTrainingConfig(path: "x.safetensors"))
        }
    }
}
