// Training for a wall-clock budget: measure the step time over the first iterations, fix the iteration
// count so that training, checkpoints, previews and evaluations end within the budget, then start the
// run again from its first state with that count, so that every schedule is laid over it and `--iters`
// with the same count reproduces the run exactly.
// A shared machine's speed drifts by a fifth over minutes, so a probe of the first seconds can misjudge
// the whole run: a quarter, half and three quarters of the way the run compares its pace with the
// budget and, when it would miss by more than 2%, re-plans the count from there on. The schedules of
// the iterations already trained keep the count they were laid over; the config records it (`replans`),
// so `--iters` with `--replanned` still repeats the run exactly.
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

    /// Where the run re-measures its pace (shares of its count).
    public static let paceCheckShares = [0.25, 0.5, 0.75]
    /// A projected end further than this share of the budget from it re-plans the count.
    public static let paceTolerance = 0.02

    /// The count that ends the run at the budget at `secondsPerStep`, or nil when `iterations` already ends
    /// within `tolerance` of it. `elapsed` counts from the run's start (data, probe and training),
    /// `secondsPerStep` is the recent pace (periodic checkpoints and evaluations included), and
    /// `finalSeconds` the last checkpoint and evaluation.
    public static func correctedCount(step: Int, iterations: Int, elapsed: Double, secondsPerStep: Double, finalSeconds: Double,
                                      budget: Double, tolerance: Double = paceTolerance) -> Int? {
        let projected = elapsed + Double(iterations - step) * secondsPerStep + finalSeconds
        guard abs(projected - budget) > tolerance * budget, secondsPerStep > 0 else { return nil }
        let affordable = ((budget - elapsed - finalSeconds) / secondsPerStep).rounded(.down)
        return step + max(1, Int(min(affordable, Double(Int32.max))))
    }

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
        let planned = try rebuiltTrainer(from: first, with: config)
        return (planned, BudgetPlan(budget: budget, iterations: iterations, stepSeconds: stepSeconds, saveSeconds: saveSeconds,
                                    evaluationSeconds: evaluationSeconds, spentSeconds: spent, probeIterations: times.count))
    }
}

extension TrainingLoop {
    /// Compares the pace of the last `steps` iterations (trained in `seconds`, periodic checkpoints and
    /// evaluations included) with what is left of the budget, and re-plans the count when the run would miss
    /// it; returns the note to print, if it did. The recent pace, not the run's mean: a slow stretch that has
    /// passed should not cut the rest of the run short.
    func keepToBudget(_ plan: BudgetPlan, startedAt runStart: Double, steps: Int, seconds: Double, plannedPace: Double) throws -> String? {
        var measured = [Clock.seconds() - runStart, seconds / Double(max(1, steps))]
        try trainer.collective.maximum(&measured)
        let (elapsed, pace) = (measured[0], measured[1])
        let config = trainer.config
        guard let count = BudgetPlan.correctedCount(step: trainer.step, iterations: config.iterations, elapsed: elapsed, secondsPerStep: pace,
                                                    finalSeconds: plan.saveSeconds + plan.evaluationSeconds, budget: plan.budget.seconds),
              count != config.iterations else { return nil }
        try replan(iterations: count)
        let repeats = trainer.config.replans.map { "--replanned \($0.step):\($0.previousIterations)" }.joined(separator: " ")
        return String(format: "at iteration %d the steps take %.3g s, not the %.3g s planned: %d iterations instead of %d, to end on time "
                      + "(repeat exactly with --iters %d %@)", trainer.step, pace, plannedPace, count, config.iterations, count, repeats)
    }

    /// Continues from the current state with `iterations` as the count: the schedules of the iterations still
    /// to come are laid over it, the config records the old count for those already trained.
    func replan(iterations: Int) throws {
        var config = trainer.config
        config.replans.append(Replan(step: trainer.step, previousIterations: config.iterations))
        config.iterations = iterations
        trainer = try rebuiltTrainer(from: try trainer.checkpoint(), with: config)
    }

    /// The trainer of `state` with `config` in place of its own, training with the same processes.
    private func rebuiltTrainer(from state: Checkpoint, with config: TrainingConfig) throws -> Trainer {
        var state = state
        state.metadata["config"] = try config.json()
        let rebuilt = try Trainer.restore(from: state, path: directory.checkpoint.path)
        rebuilt.collective = trainer.collective
        return rebuilt
    }
}
