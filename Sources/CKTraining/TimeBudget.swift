// Training for a wall-clock budget: measure the step time over the first iterations, fix the iteration
// count so that training, checkpoints, previews and evaluations end within the budget, then start the
// run again from its first state with that count, so that every schedule is laid over it and `--iters`
// with the same count reproduces the run exactly.
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets

/// A duration: "90s", "10m", "1h", "1h30m", "2.5m" or plain seconds ("600").
public struct TimeBudget: Sendable, Equatable, CustomStringConvertible {
    public let seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if let plain = Double(trimmed) { guard plain > 0, plain.isFinite else { return nil }; seconds = plain; return }
        var total = 0.0, number = "", sawUnit = false
        for ch in trimmed {
            if ch.isNumber || ch == "." { number.append(ch); continue }
            guard let value = Double(number), let unit = ["h": 3600.0, "m": 60, "s": 1][String(ch)] else { return nil }
            total += value * unit
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit, total > 0, total.isFinite else { return nil }
        seconds = total
    }

    /// "10m00s", "1h05m", "45s".
    public var description: String { formatDuration(seconds) }
}

/// What the budget's measurement found and decided.
public struct BudgetPlan: Sendable {
    public let budget: TimeBudget
    public let iterations: Int
    /// Median seconds per training iteration over the probe.
    public let stepSeconds: Double
    /// One checkpoint with its preview, and one evaluation (0 when off).
    public let saveSeconds: Double, evaluationSeconds: Double
    /// Spent before the plan: data loading and the probe.
    public let spentSeconds: Double
    public let probeIterations: Int

    public var summary: String {
        String(format: "time budget %@: %.3f s per iteration over %d probe iterations, %.2f s per checkpoint, %.2f s per evaluation, "
               + "%.1f s spent on data and the probe -> %d iterations", budget.description, stepSeconds, probeIterations, saveSeconds,
               evaluationSeconds, spentSeconds, iterations)
    }
}

extension TrainingLoop {
    /// Probes the step time on the fresh trainer, then rebuilds it from its first state with the iteration
    /// count the budget allows (counting the run's checkpoints, previews and evaluations).
    func plan(budget: TimeBudget, startedAt start: Double, batcher: inout StepBatcher,
              evaluator: TrainingEvaluator?) throws -> (Trainer, BudgetPlan) {
        let first = try trainer.checkpoint()
        // Two untimed warm-up iterations, then timed ones for 2% of the budget (at least a second and 5
        // iterations, at most 300): a short probe misjudges fast steps.
        var times: [Double] = []
        let probeStart = Clock.seconds(), probeSeconds = max(1, 0.02 * budget.seconds)
        while times.count < 300 {
            let k = trainer.step
            var rng = trainer.rng(forStep: k)
            let t0 = Clock.seconds()
            _ = try trainer.trainStep(batchOf: k, from: &batcher, rng: &rng)
            if k >= 2 { times.append(Clock.seconds() - t0) }
            if times.count >= 5 && Clock.seconds() - probeStart > probeSeconds { break }
        }
        var t0 = Clock.seconds()
        if trainer.collective.isPrimary {
            try save(to: directory.url.appendingPathComponent(".budget-probe.safetensors"), preview: false)
            try? FileManager.default.removeItem(at: directory.url.appendingPathComponent(".budget-probe.safetensors"))
        }
        var saveSeconds = Clock.seconds() - t0
        t0 = Clock.seconds()
        if let evaluator { _ = try evaluator.scores(trainer) }
        var evaluationSeconds = evaluator == nil ? 0 : Clock.seconds() - t0
        var stepSeconds = times.sorted()[times.count / 2]
        var spent = Clock.seconds() - start
        // Every process plans the same count: from the slowest step and rank 0's file and evaluation times.
        var measured = [stepSeconds, saveSeconds, evaluationSeconds, spent]
        try trainer.collective.maximum(&measured)
        (stepSeconds, saveSeconds, evaluationSeconds, spent) = (measured[0], measured[1], measured[2], measured[3])

        // The last iteration always saves (and evaluates); the periodic ones come every saveEvery / evalEvery.
        let perIteration = stepSeconds + (saveEvery > 0 ? saveSeconds / Double(saveEvery) : 0)
            + (evalEvery > 0 ? evaluationSeconds / Double(evalEvery) : 0)
        let available = budget.seconds - spent - saveSeconds - evaluationSeconds
        let iterations = Int(available / perIteration)
        guard iterations >= 1 else {
            throw TrainingError.budgetTooSmall(seconds: budget.seconds, spent: spent, stepSeconds: stepSeconds,
                                               saveSeconds: saveSeconds + evaluationSeconds)
        }
        var config = trainer.config
        config.iterations = iterations
        config.timeBudget = budget.seconds
        var restart = first
        restart.metadata["config"] = try config.json()
        let planned = try Trainer.restore(from: restart, path: directory.checkpoint.path)
        planned.collective = trainer.collective
        return (planned, BudgetPlan(budget: budget, iterations: iterations, stepSeconds: stepSeconds, saveSeconds: saveSeconds,
                                    evaluationSeconds: evaluationSeconds, spentSeconds: spent, probeIterations: times.count))
    }
}
