// cmkit train, continued: two-phase runs (an EDM model first), and library errors in flag language.
import ArgumentParser
import Foundation
import CKConsistency
import CKTraining

extension Train {
    /// A method that starts from a diffusion model, given none but a budget or a pretraining count: both phases.
    func pretrainingPlan() throws -> PretrainingPlan? {
        let r = try request()
        guard r.method.type.inputs.contains(.diffusionModel), r.inputs[.diffusionModel] == nil else {
            if let flag = pretraining.givenFlags.first { throw CLIError("\(flag) is for a two-phase run (--method ect or ctm without --init or --teacher)") }
            return nil
        }
        let fraction = pretraining.pretrainFraction ?? PretrainingOptions.defaultFraction
        let learningRate = pretraining.pretrainLr ?? (usesImageRecipe ? ImageRecipe.pretrainLearningRate : nil)
        let decay = pretraining.pretrainLrDecay ?? (usesImageRecipe ? ImageRecipe.pretrainLearningRateDecay : nil)
        if let budget = runOptions.time?.budget {
            if pretraining.pretrainIters != nil { throw CLIError("--pretrain-iters is for runs with --iters; with --time give --pretrain-fraction") }
            var plan = try PretrainingPlan(request: r, budget: budget, fraction: fraction, pretrainIterations: 10_000, pretrainLearningRate: learningRate,
                                           pretrainLearningRateDecay: decay)
            plan.repeatFlags = budgetChosenGuidance(classes: r.classes).map { ["--ect-guidance \(formatted(Float($0)))"] }
            return plan
        }
        if let pretrainIters = pretraining.pretrainIters {
            if runOptions.iters == nil { throw CLIError("give --iters for the second phase with --pretrain-iters") }
            return try PretrainingPlan(request: r, budget: nil, fraction: fraction, pretrainIterations: pretrainIters, pretrainLearningRate: learningRate,
                                       pretrainLearningRateDecay: decay)
        }
        guard usesImageRecipe else { return nil }
        // The recipe with a count: --iters is both phases together, split by the fraction.
        guard r.iterations >= 2 else { throw CLIError("--iters \(r.iterations): images without --method train an EDM model and then tune it; give --iters 2 or more (or --time)") }
        var split = r
        let pretrainIterations = ImageRecipe.pretrainIterations(of: r.iterations, fraction: fraction)
        split.iterations = r.iterations - pretrainIterations
        return try PretrainingPlan(request: split, budget: nil, fraction: fraction, pretrainIterations: pretrainIterations,
                                   pretrainLearningRate: learningRate, pretrainLearningRateDecay: decay)
    }

    func runPretrained(_ plan: PretrainingPlan, in directory: RunDirectory, settings: RunSettings? = nil) throws {
        let run = PretrainedRun(plan: plan, directory: directory)
        run.configure = { self.configure($0, settings: settings) }
        run.onNote = { if isPrimary { note($0) } }
        if let collective = Train.collective { run.collective = collective }
        try explainingErrors { _ = try run.run() }
    }

    /// Library errors in the command line's words: which flag gives what is missing or wrong.
    func explainingErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as TrainingError {
            switch error {
            case let .missingInput(method, input):
                let flag = methodGroups.lazy.compactMap { type(of: $0).flag(for: input) }.first ?? input.rawValue
                throw CLIError("--method \(method.rawValue) needs \(flag) (\(inputHint(input)))"
                               + (input == .diffusionModel ? ", or --time / --pretrain-iters to train one first" : ""))
            case .nonFiniteLoss:
                let kept = FileManager.default.fileExists(atPath: RunDirectory(path: runOptions.resume ?? runOptions.out ?? ".").checkpoint.path)
                throw CLIError("\(error). " + (kept ? "The last checkpoint is kept as it was; " : "No checkpoint was written yet; ")
                               + "start a new run with a lower --lr or with --max-grad-norm.")
            default:
                throw error
            }
        }
    }

    private func inputHint(_ input: MethodInput) -> String {
        switch input {
        case .diffusionModel: return "an EDM checkpoint: train one with `cmkit train --method edm`"
        case .autoencoder: return "train one with `cmkit train-autoencoder`"
        }
    }
}
