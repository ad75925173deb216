// ECT against the vectors (r(t) for both mappings, w(t), the per-sample loss), hand computations of the
// stage schedule, and a short tuning run from an EDM model that improves one-step samples.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKEvaluation
import CKTraining
import CKTestSupport

final class ECTTests: XCTestCase {
    func testScheduleWeightAndLossMatchVectors() throws {
        let v = try Vectors.load("ect_schedule.json")
        let tol = try v.dict("tolerance"), rtol = try tol.double("rel"), atol = try tol.double("abs")
        let params = try v.dict("params")
        var config = ECTConfig()
        config.k = try params.double("k")
        config.b = try params.double("b")
        let sigmaData = try params.double("sigma_data")
        for c in try v.dicts("schedule") {
            let t = try c.double("t"), stage = try c.int("stage")
            config.q = try c.double("q")
            config.mapping = .sigmoid
            assertClose(config.r(t: t, stage: stage), try c.double("r_sigmoid"), atol: atol, rtol: rtol, "sigmoid r(\(t)) stage \(stage) q \(config.q)")
            config.mapping = .constant
            assertClose(config.r(t: t, stage: stage), try c.double("r_const"), atol: atol, rtol: rtol, "constant r(\(t)) stage \(stage) q \(config.q)")
        }
        for c in try v.dicts("weights") {
            assertClose(ectWeight(t: try c.double("t"), sigmaData: sigmaData), try c.double("w"), atol: atol, rtol: rtol, "w")
        }
        // The loss as the trainer computes it: weight times pseudo-Huber of student minus target, in Float.
        for c in try v.dicts("losses") {
            let (student, target) = (try c.doubles("student"), try c.doubles("target"))
            try checkSameLength("student and target", student.count, target.count)
            let d = student.count
            let diff = Tensor(shape: [1, d], storage: student.map(Float.init)) - Tensor(shape: [1, d], storage: target.map(Float.init))
            let loss = pseudoHuber(diff, c: Float(try c.double("c"))).scalar * Float(ectWeight(t: try c.double("t"), sigmaData: sigmaData))
            // Float inputs: the file's 1e-6 relative holds for the weight and r in Double; the loss is a float32 sum.
            assertClose(loss, Float(try c.double("loss")), atol: 0, rtol: 1e-5, "loss t=\(try c.double("t"))")
        }
    }

    func testStagesAreLaidOverTheRun() {
        var config = ECTConfig()
        config.stages = 4
        // 1000 iterations in 4 stages of 250: 0 ..< 250 stage 0, ..., 750 ..< 1000 stage 3.
        XCTAssertEqual([0, 249, 250, 499, 500, 999].map { config.stage(step: $0, iterations: 1000) }, [0, 0, 1, 1, 2, 3])
        // 10 iterations in 4 stages of ceil(10/4) = 3: the last stage is 9 alone.
        XCTAssertEqual((0..<10).map { config.stage(step: $0, iterations: 10) }, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
        config.stages = 1
        XCTAssertEqual(config.stage(step: 999, iterations: 1000), 0)
        // q = 4, stage 0, constant mapping: r = t (1 - 1/4); stage 1: t (1 - 1/16).
        config.mapping = .constant
        config.q = 4
        XCTAssertEqual(config.r(t: 2, stage: 0), 1.5)
        XCTAssertEqual(config.r(t: 2, stage: 1), 1.875)
        // Sigmoid mapping at large t: sigmoid(-40) ~ 4e-18, so r ~ t (1 - 1/q).
        config.mapping = .sigmoid
        XCTAssertEqual(config.r(t: 40, stage: 0), 30, accuracy: 1e-12)
        // ... and at small t the adjustment 1 + 8 sigmoid(-t) ~ 5 > q clamps r to 0 (the target is the data).
        XCTAssertEqual(config.r(t: 0.01, stage: 0), 0)
    }

    func testLastStageShareShortensTheLastStage() throws {
        var config = ECTConfig()
        config.stages = 2
        config.lastStageShare = 0.15
        // 2205 iterations: the last stage is round(330.75) = 331 long and starts at 2205 - 331 = 1874.
        XCTAssertEqual([0, 1873, 1874, 2204].map { config.stage(step: $0, iterations: 2205) }, [0, 0, 1, 1])
        // Three stages, 100 iterations, share 0.2: the last 20 are stage 2, the first two split 80 as 40 + 40.
        config.stages = 3
        config.lastStageShare = 0.2
        XCTAssertEqual([0, 39, 40, 79, 80, 99].map { config.stage(step: $0, iterations: 100) }, [0, 0, 1, 1, 2, 2])
        // A share too small for one iteration still gives the last stage the final one.
        config.lastStageShare = 0.001
        XCTAssertEqual([98, 99].map { config.stage(step: $0, iterations: 100) }, [1, 2])
        // One stage has no last stage to shorten.
        config.stages = 1
        XCTAssertEqual(config.stage(step: 99, iterations: 100), 0)
        for bad in [0.0, 1.0, -0.5, .nan] {
            config.lastStageShare = bad
            XCTAssertThrowsError(try config.validate(), "share \(bad)")
        }
        // A checkpoint written before the setting existed keeps equal stages.
        let old = try TrainingConfig.stored(in: Checkpoint(metadata: ["config": #"{"method":"ect","ect":{"q":16,"stages":2}}"#]), path: "c")
        let options = old.options(as: ECTConfig.self)
        XCTAssertNil(options.lastStageShare)
        XCTAssertEqual([1102, 1103].map { options.stage(step: $0, iterations: 2205) }, [0, 1])
    }

    /// Guided tuning's x_r is one Euler step of the teacher's ODE from x_t. With a teacher that denoises exactly
    /// (every sample is the same point x0) that step lands on x0 + r z, where plain ECT puts x_r, and where r = 0
    /// the teacher's output is x0, the data: the two losses agree. A teacher that denoises elsewhere moves them.
    func testGuidedTargetIsTheTeachersEulerStep() throws {
        let x0: [Float] = [0.3, -0.7]
        let batch = Tensor(shape: [32, 2], storage: (0..<32).flatMap { _ in x0 })
        let network = TrainingConfig(method: .ect).makeNetwork()
        let config = ECTConfig()                 // q 4, stage 0: r = 0 for t below about 0.5, r > 0 above
        func loss(_ teacher: ((Tensor, [Float]) -> Tensor)?) -> Float {
            var rng = SplitMix64(seed: 9)
            return ectLoss(network: network, batch: batch, step: 0, iterations: 100, config: config, teacher: teacher, rng: &rng).loss.scalar
        }
        var rng = SplitMix64(seed: 9)
        let ts = (0..<32).map { _ in exp(config.pMean + config.pStd * rng.normalDouble()) }
        XCTAssertTrue(ts.contains { config.r(t: $0, stage: 0) == 0 } && ts.contains { config.r(t: $0, stage: 0) > 0 },
                      "the batch has both kinds of samples")
        let plain = loss(nil)
        let exact = loss { x, _ in Tensor(shape: x.shape, storage: (0..<x.shape[0]).flatMap { _ in x0 }) }
        // Float: x0 + t z - t z (t - r)/t against x0 + r z, with t up to 80.
        XCTAssertEqual(exact, plain, accuracy: 1e-3 * plain)
        let elsewhere = loss { x, _ in Tensor(zeros: x.shape) }
        XCTAssertGreaterThan(abs(elsewhere - plain), 0.05 * plain, "plain \(plain), teacher denoising to 0: \(elsewhere)")
    }

    func testTuningAnEDMModelImprovesOneStepSamples() throws {
        var edm = TrainingConfig(method: .edm)
        edm.iterations = 1500
        edm.batchSize = 128
        edm.learningRate = 1e-3
        edm.emaDecay = 0.99
        edm.seed = 21
        let teacher = try Trainer(config: edm)
        try train(teacher, until: edm.iterations)

        var config = TrainingConfig(method: .ect)
        config.iterations = 600
        config.batchSize = 128
        config.learningRate = 1e-3
        config.emaDecay = 0.99
        config.seed = 22
        // Measured on this run (one-step sliced W2 from 0.446): q 16 in 1 or 2 stages passes; q 4 in 4 stages
        // 0.241, q 2 0.48, q 256 0.336, q 4 with the 1/(t - r) weighting 0.321.
        var options = ECTConfig()
        options.q = 16
        options.stages = 2
        config.options = options
        let ect = try Trainer(config: config, inputs: MethodInputs(diffusionModel: teacher.trainedModel()))
        var rng = SplitMix64(seed: 5)
        let reference = Toy2D.checkerboard.sample(count: 2048, rng: &rng)
        func oneStep() throws -> Double {
            let samples = try ect.withEMAWeights {
                try SamplingPlan(kind: .consistency, steps: 1).sample(network: ect.network, count: 2048, seed: 3, context: ect.samplingContext)
            }
            return slicedWasserstein2(samples, reference)
        }
        // Before tuning, one step of the denoiser from sigma_max lands near the data's mean.
        let before = try oneStep()
        try train(ect, until: config.iterations)
        let after = try oneStep()
        XCTAssertLessThan(after, 0.5 * before, "one-step sliced W2 before ECT \(before), after \(after)")
    }
}
