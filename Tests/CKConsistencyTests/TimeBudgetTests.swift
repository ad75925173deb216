// --time: durations parse; a budgeted run plans a count, records it, and equals a run with --iters of that count.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKTraining
import CKTestSupport

final class TimeBudgetTests: XCTestCase {
    func testDurationsParse() {
        let good: [(String, Double)] = [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150), ("600", 600),
                                        ("1m30s", 90), (" 45S ", 45)]
        for (text, seconds) in good { XCTAssertEqual(TimeBudget(parsing: text)?.seconds, seconds, text) }
        for text in ["", "10x", "-5m", "m", "0s", "0", "1h30", "nan", "inf", "5m-"] { XCTAssertNil(TimeBudget(parsing: text), text) }
        XCTAssertEqual(TimeBudget(seconds: 600).description, "10m00s")
    }

    func testABudgetedRunEqualsARunWithItsPlannedCount() throws {
        var config = TrainingConfig(method: .ict)
        config.batchSize = 64
        config.seed = 9
        let run = try temporaryRun("budget")
        defer { try? FileManager.default.removeItem(at: run.url) }
        let budgeted = TrainingLoop(trainer: try Trainer(config: config), directory: run)
        budgeted.budget = TimeBudget(seconds: 3)
        budgeted.saveEvery = 0
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
        let exact = try Trainer(config: config)
        try train(exact, until: plan.iterations)
        for (a, b) in zip(budgeted.trainer.network.parameters, exact.network.parameters) {
            XCTAssertEqual(a.value.storage, b.value.storage, a.name)
        }
        XCTAssertEqual(budgeted.trainer.ema.values.map(\.storage), exact.ema.values.map(\.storage))
    }
}
