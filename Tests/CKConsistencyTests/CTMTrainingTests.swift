// End to end on the toy board: an EDM teacher learns (Heun samples approach the data), CTM distilled from
// it makes one-step samples far better than the teacher-initialised student's, and a CTM run resumes
// bit for bit (its teacher and target network travel in the checkpoint).
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKEvaluation
import CKTraining
import CKTestSupport

final class CTMTrainingTests: XCTestCase {
    private func config(method: MethodName, iterations: Int) -> TrainingConfig {
        var c = TrainingConfig(method: method)
        c.model = .mlpToy
        c.data = "toy:checkerboard"
        c.sampleShape = [2]
        c.iterations = iterations
        c.batchSize = 128
        c.learningRate = 1e-3
        c.emaDecay = 0.99
        c.seed = 17
        return c
    }

    private func slicedW2(_ trainer: Trainer, _ plan: SamplingPlan) throws -> Double {
        var rng = SplitMix64(seed: 5)
        let reference = Toy2D.checkerboard.sample(count: 2048, rng: &rng)
        let samples = try trainer.withEMAWeights {
            try plan.sample(network: trainer.network, count: 2048, seed: 3, context: trainer.samplingContext)
        }
        return slicedWasserstein2(samples, reference)
    }

    /// An EDM teacher trained for `iterations` (cached per test run: two tests share it).
    private static var teacherCache: [Int: Trainer] = [:]
    private func teacher(iterations: Int) throws -> Trainer {
        if let t = Self.teacherCache[iterations] { return t }
        let t = try Trainer(config: config(method: .edm, iterations: iterations))
        try train(t, until: iterations)
        Self.teacherCache[iterations] = t
        return t
    }

    private func student(of teacher: Trainer, iterations: Int) throws -> Trainer {
        try Trainer(config: config(method: .ctm, iterations: iterations), inputs: MethodInputs(diffusionModel: teacher.trainedModel()))
    }

    func testEDMTeacherAndCTMStudentImproveTheirMetrics() throws {
        let heun = SamplingPlan(kind: .heun, steps: 18)
        let fresh = try Trainer(config: config(method: .edm, iterations: 1))
        let untrained = try slicedW2(fresh, heun)
        let edm = try teacher(iterations: 2000)
        let trained = try slicedW2(edm, heun)
        XCTAssertLessThan(trained, 0.5 * untrained, "EDM Heun-18 sliced W2: untrained \(untrained), trained \(trained)")

        let ctm = try student(of: edm, iterations: 400)
        let oneStep = SamplingPlan(kind: .ctm, steps: 1)
        let before = try slicedW2(ctm, oneStep)
        try train(ctm, until: 400)
        let after = try slicedW2(ctm, oneStep)
        // The teacher-initialised student's one-step jump G(80 z, 80, 0.002) ~ D(80 z, 80) collapses to the mean.
        XCTAssertLessThan(after, 0.6 * before, "CTM one-step sliced W2: before \(before), after \(after)")
    }

    func testCTMRunResumesBitForBit() throws {
        let edm = try teacher(iterations: 2000)
        let straight = try student(of: edm, iterations: 20)
        try train(straight, until: 20)

        let first = try student(of: edm, iterations: 20)
        let run = try temporaryRun("ctm-resume")
        defer { try? FileManager.default.removeItem(at: run.url) }
        try train(first, until: 10, in: run)
        let resumed = try Trainer.restore(from: try Checkpoint.read(from: run.checkpoint), path: run.checkpoint.path)
        XCTAssertEqual(resumed.step, 10)
        try train(resumed, until: 20, in: run)

        for (a, b) in zip(straight.network.parameters, resumed.network.parameters) {
            XCTAssertEqual(a.value.storage, b.value.storage, "online \(a.name) differs after resume")
        }
        let targets = [straight, resumed].map { ($0.method as! CTM).state.targetEMA.values.map(\.storage) }
        XCTAssertEqual(targets[0], targets[1], "target network differs")
        XCTAssertEqual(straight.lastLoss, resumed.lastLoss)
    }

    func testCTMNeedsAnEDMTeacherOfTheSameNetwork() throws {
        let c = config(method: .ctm, iterations: 10)
        XCTAssertThrowsError(try Trainer(config: c)) { error in
            XCTAssertEqual(error as? TrainingError, .missingInput(method: .ctm, input: .diffusionModel))
        }
        let ict = try Trainer(config: config(method: .ict, iterations: 1)).trainedModel()
        XCTAssertThrowsError(try Trainer(config: c, inputs: MethodInputs(diffusionModel: ict))) { error in
            XCTAssertEqual(error as? TrainingError, .inputHasWrongMethod(path: "the teacher", found: .ict, expected: .edm))
        }
    }
}
