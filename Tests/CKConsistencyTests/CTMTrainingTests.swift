// End to end on the toy board: an EDM teacher learns (Heun samples approach the data), CTM distilled from
// it makes one-step samples far better than the teacher-initialised student's, and a CTM run resumes
// bit for bit (its teacher and target network travel in the checkpoint).
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKMetrics
import CKTestSupport

final class CTMTrainingTests: XCTestCase {
    private func config(method: String, iterations: Int) -> TrainingConfig {
        var c = TrainingConfig()
        c.method = method
        c.model = ModelName.mlpToy.rawValue
        c.data = "toy:checkerboard"
        c.sampleShape = [2]
        c.iterations = iterations
        c.batchSize = 128
        c.learningRate = 1e-3
        c.emaDecay = 0.99
        c.seed = 17
        if method == "ctm" { c.ctm = CTMConfig() }
        return c
    }

    private func train(_ trainer: Trainer, until end: Int) throws {
        var batcher = try StepBatcher(dataset: ToyDataset(.checkerboard), batchSize: trainer.config.batchSize, seed: trainer.config.seed)
        while trainer.step < end {
            var rng = trainer.rng(forStep: trainer.step)
            _ = try trainer.trainStep(batch: batcher.batch(forStep: trainer.step), rng: &rng)
        }
    }

    private func slicedW2(_ trainer: Trainer, _ plan: SamplingPlan) throws -> Double {
        var rng = SplitMix64(seed: 5)
        let reference = Toy2D.checkerboard.sample(count: 2048, rng: &rng)
        let samples = try trainer.withEMAWeights { try plan.sample(network: trainer.network, count: 2048, seed: 3) }
        return slicedWasserstein2(samples, reference)
    }

    /// An EDM teacher trained for `iterations` (cached per test run: two tests share it).
    private static var teacherCache: [Int: Trainer] = [:]
    private func teacher(iterations: Int) throws -> Trainer {
        if let t = Self.teacherCache[iterations] { return t }
        let t = try Trainer(config: config(method: "edm", iterations: iterations), network: try config(method: "edm", iterations: iterations).makeNetwork())
        try train(t, until: iterations)
        Self.teacherCache[iterations] = t
        return t
    }

    private func student(of teacher: Trainer, iterations: Int) throws -> Trainer {
        let c = config(method: "ctm", iterations: iterations)
        let network = try c.makeNetwork()
        let teacherNetwork = try config(method: "edm", iterations: 1).makeNetwork()
        teacher.withEMAWeights { _ = copyMatchingValues(from: teacher.network, to: teacherNetwork) }
        copyMatchingValues(from: teacherNetwork, to: network)
        return try Trainer(config: c, network: network, teacher: teacherNetwork)
    }

    func testEDMTeacherAndCTMStudentImproveTheirMetrics() throws {
        let heun = SamplingPlan(kind: .heun, steps: 18)
        let fresh = try Trainer(config: config(method: "edm", iterations: 1), network: try config(method: "edm", iterations: 1).makeNetwork())
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
        try train(first, until: 10)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ctm-resume-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try first.checkpoint().write(to: url)
        let resumed = try Trainer.restore(from: try Checkpoint.read(from: url), path: url.path)
        XCTAssertEqual(resumed.step, 10)
        try train(resumed, until: 20)

        for (a, b) in zip(straight.network.parameters, resumed.network.parameters) {
            XCTAssertEqual(a.value.storage, b.value.storage, "online \(a.name) differs after resume")
        }
        XCTAssertEqual(straight.ctm!.targetEMA.values.map(\.storage), resumed.ctm!.targetEMA.values.map(\.storage), "target network differs")
        XCTAssertEqual(straight.lastLoss, resumed.lastLoss)
    }

    func testCTMNeedsATeacher() throws {
        let c = config(method: "ctm", iterations: 10)
        XCTAssertThrowsError(try Trainer(config: c, network: try c.makeNetwork())) { error in
            XCTAssertTrue("\(error)".contains("--teacher"), "\(error)")
        }
    }
}
