// --time: durations parse; a budgeted run plans a count, records it, and equals a run with --iters of that count;
// a run whose pace changes re-plans its count and equals a run with --iters and the recorded re-plans.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
@testable import CKTraining
import CKTestSupport

final class TimeBudgetTests: XCTestCase {
    func testDurationsParse() {
        let good: [(String, Double)] = [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150), ("600", 600),
                                        ("1m30s", 90), (" 45S ", 45)]
        for (text, seconds) in good { XCTAssertEqual(TimeBudget(parsing: text)?.seconds, seconds, text) }
        for text in ["", "10x", "-5m", "m", "0s", "0", "1h30", "nan", "inf", "5m-"] { XCTAssertNil(TimeBudget(parsing: text), text) }
        XCTAssertEqual(TimeBudget(seconds: 600).description, "10m00s")
    }

    /// A toy iCT run with a budget of `seconds`, in a temporary folder (removed by the caller).
    private func budgetedLoop(_ config: TrainingConfig, seconds: Double, in run: RunDirectory) throws -> TrainingLoop {
        let loop = TrainingLoop(trainer: try Trainer(config: config), directory: run)
        loop.budget = TimeBudget(seconds: seconds)
        loop.saveEvery = 0
        return loop
    }

    /// A fresh run of `config`, trained to its count with --iters.
    private func exactRun(_ config: TrainingConfig) throws -> Trainer {
        let trainer = try Trainer(config: config)
        try train(trainer, until: config.iterations)
        return trainer
    }

    func testABudgetedRunEqualsARunWithItsPlannedCount() throws {
        var config = TrainingConfig(method: .ict)
        config.batchSize = 64
        config.seed = 9
        let run = try temporaryRun("budget")
        defer { try? FileManager.default.removeItem(at: run.url) }
        let budgeted = try budgetedLoop(config, seconds: 3, in: run)
        // The plan alone (a re-plan on a busy machine is the next test's).
        budgeted.keepsToBudget = false
        try budgeted.run()
        let plan = try XCTUnwrap(budgeted.plan)
        XCTAssertGreaterThan(plan.iterations, 10)
        XCTAssertEqual(budgeted.trainer.step, plan.iterations)
        // The checkpoint records the count and the budget.
        let stored = try TrainingConfig.stored(in: try Checkpoint.read(from: run.checkpoint), path: run.checkpoint.path)
        XCTAssertEqual(stored.iterations, plan.iterations)
        XCTAssertEqual(stored.timeBudget, 3)

        // --iters with that count: the same weights bit for bit (the probe's iterations were thrown away).
        config.iterations = plan.iterations
        let exact = try exactRun(config)
        XCTAssertEqual(budgeted.trainer.network.parameters.map(\.value.storage), exact.network.parameters.map(\.value.storage))
        XCTAssertEqual(budgeted.trainer.ema.values.map(\.storage), exact.ema.values.map(\.storage))
    }

    func testCorrectedCountByHand() {
        // 200 of 1,000 iterations done after 20 s of a 100 s budget; 2 s for the last checkpoint.
        func count(pace: Double, elapsed: Double = 20) -> Int? {
            BudgetPlan.correctedCount(step: 200, iterations: 1000, elapsed: elapsed, secondsPerStep: pace, finalSeconds: 2, budget: 100)
        }
        XCTAssertNil(count(pace: 0.1), "ends at 102 s: inside 2% of the budget")
        XCTAssertEqual(count(pace: 0.125), 200 + 624, "ends at 122 s: 78 s left buy 624 iterations at 0.125 s")
        XCTAssertEqual(count(pace: 0.0625), 200 + 1248, "ends at 72 s: 78 s buy 1,248 at 0.0625 s")
        XCTAssertEqual(count(pace: 0.125, elapsed: 150), 201, "past the budget: one more iteration, the run's end")
        XCTAssertNil(count(pace: 0))
    }

    func testARunThatSlowsDownReplansAndEqualsARunWithItsRecordedCounts() throws {
        var config = TrainingConfig(method: .ict)
        config.batchSize = 64
        config.seed = 5
        config.learningRateDecay = 0.5
        let run = try temporaryRun("replan")
        defer { try? FileManager.default.removeItem(at: run.url) }
        // The data turns slow once the probe is over: the plan's pace is too fast for the rest of the run.
        let budgeted = try budgetedLoop(config, seconds: 4, in: run)
        let slowing = SlowingData(ToyDataset(.checkerboard), fastBatches: Int.max)
        budgeted.data = slowing
        budgeted.onNote = { if $0.hasPrefix("time budget") { slowing.fastBatches = slowing.served + 20 } }
        try budgeted.run()
        let plan = try XCTUnwrap(budgeted.plan)
        let final = budgeted.trainer.config
        XCTAssertFalse(final.replans.isEmpty, "a pace several times slower after the plan must re-plan the count")
        XCTAssertEqual(final.replans.first?.previousIterations, plan.iterations)
        XCTAssertLessThan(final.iterations, plan.iterations, "slower steps buy fewer iterations")
        XCTAssertEqual(budgeted.trainer.step, final.iterations)
        let stored = try TrainingConfig.stored(in: try Checkpoint.read(from: run.checkpoint), path: run.checkpoint.path)
        XCTAssertEqual(stored.replans, final.replans)

        // --iters with the final count and the recorded re-plans: the same weights bit for bit; without them, not.
        var repeatConfig = config
        repeatConfig.iterations = final.iterations
        repeatConfig.replans = final.replans
        let repeated = try exactRun(repeatConfig)
        XCTAssertEqual(budgeted.trainer.network.parameters.map(\.value.storage), repeated.network.parameters.map(\.value.storage))
        XCTAssertEqual(budgeted.trainer.ema.values.map(\.storage), repeated.ema.values.map(\.storage))
        repeatConfig.replans = []
        let plain = try exactRun(repeatConfig)
        XCTAssertNotEqual(budgeted.trainer.ema.values.map(\.storage), plain.ema.values.map(\.storage))
    }

    /// A two-phase budget run ends with the counts that repeat it, and the options the budget chose besides them.
    func testTwoPhaseBudgetRunNamesItsCountsAndChosenOptions() throws {
        var request = RunRequest()
        request.method = .ect
        request.data = try DataSpec(parsing: "toy:checkerboard")
        request.batchSize = 32
        var plan = try PretrainingPlan(request: request, budget: TimeBudget(seconds: 8), fraction: 0.5, pretrainIterations: 10_000,
                                       pretrainLearningRate: nil)
        plan.repeatFlags = ["--ect-guidance 1"]
        // One thread: two threads' hand-offs on a machine busy with other work can make the preview take seconds.
        let threads = Parallel.threadCount
        Parallel.configure(threads: 1)
        defer { Parallel.configure(threads: threads) }
        let run = try temporaryRun("two-phase-note")
        defer { try? FileManager.default.removeItem(at: run.url) }
        let twoPhase = PretrainedRun(plan: plan, directory: run)
        twoPhase.configure = { $0.saveEvery = 0; $0.evalEvery = 0 }
        var notes: [String] = []
        twoPhase.onNote = { notes.append($0) }
        let trainer = try twoPhase.run()
        let edm = try TrainingConfig.stored(in: try Checkpoint.read(from: run.pretraining.checkpoint), path: "pretrain")
        let counts = "--pretrain-iters \(edm.iterations) --iters \(trainer.config.iterations)"
            + trainer.config.replans.map { " --replanned \($0.step):\($0.previousIterations)" }.joined()
        XCTAssertEqual(notes.last, "the budget's counts (the same options with these instead of --time repeat the run): \(counts) --ect-guidance 1")
        XCTAssertEqual(try PretrainingPlan.read(from: run)?.repeatFlags, ["--ect-guidance 1"], "kept in pretraining.json for --resume")

        // A plan written before there were chosen options reads as none.
        var old = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: PretrainingPlan.file(in: run))) as? [String: Any])
        old["repeatFlags"] = nil
        try JSONSerialization.data(withJSONObject: old).write(to: PretrainingPlan.file(in: run))
        XCTAssertNil(try PretrainingPlan.read(from: run)?.repeatFlags)
    }

    func testReplanKeepsTheStateAndRecordsTheOldCount() throws {
        var config = TrainingConfig(method: .ict)
        config.batchSize = 32
        config.iterations = 40
        let run = try temporaryRun("replan-state")
        defer { try? FileManager.default.removeItem(at: run.url) }
        let loop = TrainingLoop(trainer: try Trainer(config: config), directory: run)
        loop.saveEvery = 0
        try loop.run(until: 10)
        let before = loop.trainer
        try loop.replan(iterations: 25)
        XCTAssertFalse(loop.trainer === before)
        XCTAssertEqual(loop.trainer.step, 10)
        XCTAssertEqual(loop.trainer.config.iterations, 25)
        XCTAssertEqual(loop.trainer.config.replans, [Replan(step: 10, previousIterations: 40)])
        XCTAssertEqual(loop.trainer.network.parameters.map(\.value.storage), before.network.parameters.map(\.value.storage))
        XCTAssertEqual(loop.trainer.ema.values.map(\.storage), before.ema.values.map(\.storage))
    }
}

/// A data set that sleeps 10 ms per batch once it has served `fastBatches` batches, as a machine that
/// slows down after the probe.
private final class SlowingData: Dataset {
    var inner: ToyDataset
    var fastBatches: Int
    private(set) var served = 0
    init(_ inner: ToyDataset, fastBatches: Int) { self.inner = inner; self.fastBatches = fastBatches }
    var sampleShape: [Int] { inner.sampleShape }
    var count: Int? { inner.count }
    func nextBatch(size: Int, rng: inout some RandomNumberGenerator) -> Tensor {
        served += 1
        if served > fastBatches { usleep(10_000) }
        return inner.nextBatch(size: size, rng: &rng)
    }
}
