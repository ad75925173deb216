// A method that starts from a diffusion model (ECT tunes it, CTM distils it) with that model trained in
// the same run: EDM in RUN/pretrain first, then the method from its EMA weights in RUN, one time budget
// split between the two (or an iteration count each). The plan is written to RUN/pretraining.json first,
// so an interrupted run resumes in whichever phase it stopped.
import Foundation
import CKTensor
import CKNN
import CKConsistency

public struct PretrainingPlan: Codable, Equatable, Sendable {
    /// The diffusion model's run (method edm); its iteration count is planned by the budget when there is one.
    public var pretrain: TrainingConfig
    /// The method's run; its iteration count likewise.
    public var method: TrainingConfig
    /// Seconds for both phases, or nil for fixed iteration counts.
    public var budget: Double?
    /// The share of the budget for pretraining.
    public var fraction: Double
    /// Wall seconds the pretraining took, once it has ended (the method gets the rest of the budget).
    public var pretrainSeconds: Double?
    /// Options the budget chose besides the counts (the recipe's guidance weight), which repeating the run with
    /// counts must give; nil in plans written before there were any.
    public var repeatFlags: [String]?

    public init(pretrain: TrainingConfig, method: TrainingConfig, budget: Double?, fraction: Double) {
        self.pretrain = pretrain
        self.method = method
        self.budget = budget
        self.fraction = fraction
    }

    public static func file(in directory: RunDirectory) -> URL { directory.url.appendingPathComponent("pretraining.json") }

    public static func read(from directory: RunDirectory) throws -> PretrainingPlan? {
        guard let data = FileManager.default.contents(atPath: file(in: directory).path) else { return nil }
        return try JSONDecoder().decode(PretrainingPlan.self, from: data)
    }

    func write(to directory: RunDirectory) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(self).write(to: Self.file(in: directory), options: .atomic)
    }
}

extension RunDirectory {
    /// Where a two-phase run trains its diffusion model.
    public var pretraining: RunDirectory { RunDirectory(url.appendingPathComponent("pretrain")) }
}

public final class PretrainedRun {
    public private(set) var plan: PretrainingPlan
    public let directory: RunDirectory
    /// Applied to both phases' loops.
    public var configure: (TrainingLoop) -> Void = { _ in }
    public var onNote: (String) -> Void = { _ in }
    /// The processes of a data-parallel run: rank 0 writes the plan; all agree on the phases' times.
    public var collective: any Collective = SingleProcess()

    public init(plan: PretrainingPlan, directory: RunDirectory) {
        self.plan = plan
        self.directory = directory
    }

    /// Runs (or resumes) both phases; returns the method's trainer.
    @discardableResult
    public func run() throws -> Trainer {
        let primary = collective.isPrimary
        if primary {
            try directory.create()
            if try PretrainingPlan.read(from: directory) == nil { try plan.write(to: directory) }
        }
        let first = directory.pretraining
        if plan.pretrainSeconds == nil {
            let start = Clock.seconds()
            let resumed = FileManager.default.fileExists(atPath: first.checkpoint.path)
            let trainer = resumed
                ? try Trainer.restore(from: try Checkpoint.read(from: first.checkpoint), path: first.checkpoint.path)
                : try Trainer(config: plan.pretrain)
            if primary { onNote("phase 1 of 2: an EDM model in \(first.path)" + (plan.budget.map { " for \(TimeBudget(seconds: $0 * plan.fraction))" } ?? "")) }
            let loop = TrainingLoop(trainer: trainer, directory: first)
            configure(loop)
            if let budget = plan.budget, trainer.step == 0 { loop.budget = TimeBudget(seconds: budget * plan.fraction) }
            // The second phase gets what this one leaves, so its count alone keeps the whole run to the budget.
            loop.keepsToBudget = false
            try loop.run()
            // A phase resumed from another session counts as its share of the budget.
            var seconds = [resumed ? (plan.budget ?? 0) * plan.fraction : Clock.seconds() - start]
            try collective.maximum(&seconds)
            plan.pretrainSeconds = seconds[0]
            if primary { try plan.write(to: directory) }
        }
        let trainer: Trainer
        if FileManager.default.fileExists(atPath: directory.checkpoint.path) {
            trainer = try Trainer.restore(from: try Checkpoint.read(from: directory.checkpoint), path: directory.checkpoint.path)
        } else {
            trainer = try Trainer(config: plan.method, inputs: MethodInputs(diffusionModel: try loadTrainedModel(from: first.checkpoint)))
        }
        let rest = plan.budget.map { TimeBudget(seconds: max(1, $0 - (plan.pretrainSeconds ?? 0))) }
        if primary { onNote("phase 2 of 2: \(plan.method.method.rawValue) from it in \(directory.path)" + (rest.map { " for \($0)" } ?? "")) }
        let loop = TrainingLoop(trainer: trainer, directory: directory)
        configure(loop)
        if trainer.step == 0 { loop.budget = rest }
        try loop.run()
        if primary, plan.budget != nil {
            // A budget chose both counts: what repeats the run exactly with --iters.
            let edm = try TrainingConfig.stored(in: try Checkpoint.read(from: first.checkpoint), path: first.checkpoint.path)
            let method = loop.trainer.config
            onNote("the budget's counts (the same options with these instead of --time repeat the run): --pretrain-iters \(edm.iterations) "
                   + "--iters \(method.iterations)" + method.replans.map { " --replanned \($0.step):\($0.previousIterations)" }.joined()
                   + (plan.repeatFlags ?? []).map { " " + $0 }.joined())
        }
        return loop.trainer
    }
}
