// cmkit train: parses the options, connects them to the library's run set-up and training loop, prints.
import ArgumentParser
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKTraining

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model and write checkpoints and sample pictures to --out.",
        discussion: "Methods: " + MethodName.allCases.map { "\($0.rawValue) (\($0.type.summary))" }.joined(separator: "; ") + ". "
            + "Writes RUN/checkpoint.safetensors (online, EMA and optimizer state), RUN/train.log (CSV), "
            + "RUN/samples-<iter>.png (samples from the EMA weights: one step; Heun with 18 steps for edm) every "
            + "--save-every iterations and at the end, and RUN/loss.png. --resume RUN/ continues a run exactly where it stopped.")

    @OptionGroup(title: "Run") var runOptions: RunOptions
    @OptionGroup(title: "Method, network and optimizer") var general: GeneralOptions
    @OptionGroup(title: "Data") var data: DataOptions
    @OptionGroup(title: "Consistency training (ict, lct)") var curriculum: CurriculumOptions
    @OptionGroup(title: "Latent CT (--method lct)") var lct: LatentCTOptions
    @OptionGroup(title: "CTM (--method ctm)") var ctm: CTMOptions
    @OptionGroup(title: "ECT (--method ect)") var ect: ECTOptions
    @OptionGroup(title: "Pretraining (ect or ctm without --init or --teacher: an EDM model first, in RUN/pretrain)")
    var pretraining: PretrainingOptions

    /// Every method's option group; options of another method than the run's are refused.
    var methodGroups: [any MethodOptionGroup] { [lct, ctm, ect] }

    func validate() throws {
        if runOptions.resume == nil && runOptions.out == nil { throw ValidationError("give --out RUN/ for a new run, or --resume RUN/.") }
        for group in methodGroups where type(of: group).method != general.method {
            if let flag = group.givenFlags.first {
                throw ValidationError("\(flag) is for --method \(type(of: group).method.rawValue), not \(general.method.rawValue).")
            }
        }
    }

    func run() throws {
        runOptions.threading.apply()
        let trainer: Trainer
        let directory: RunDirectory
        if let resume = runOptions.resume, let plan = try PretrainingPlan.read(from: RunDirectory(path: resume)),
           !FileManager.default.fileExists(atPath: RunDirectory(path: resume).checkpoint.path) {
            note("resuming the two-phase run in \(resume)")
            return try runPretrained(plan, in: RunDirectory(path: resume))
        }
        if runOptions.resume == nil, let plan = try pretrainingPlan() {
            return try runPretrained(plan, in: RunDirectory(path: runOptions.out!))
        }
        if let resume = runOptions.resume {
            directory = RunDirectory(path: resume)
            guard FileManager.default.fileExists(atPath: directory.checkpoint.path) else {
                throw CLIError("--resume \(resume): no checkpoint.safetensors there; start a new run with --out")
            }
            trainer = try Trainer.restore(from: try Checkpoint.read(from: directory.checkpoint), path: directory.checkpoint.path)
            note("resuming \(trainer.config.data) / \(trainer.config.model.rawValue) at iteration \(trainer.step) of \(trainer.config.iterations)")
        } else {
            directory = RunDirectory(path: runOptions.out!)
            trainer = try explainingErrors { try Trainer.start(try request()) }
        }
        let loop = TrainingLoop(trainer: trainer, directory: directory)
        configure(loop)
        loop.budget = runOptions.time?.budget
        try explainingErrors { try loop.run() }
    }

    private func configure(_ loop: TrainingLoop) {
        loop.saveEvery = runOptions.saveEvery
        loop.logEvery = runOptions.logEvery
        loop.evalEvery = runOptions.evalEvery
        loop.onProgress = { note($0.line) }
        loop.onNote = note
    }

    /// A method that starts from a diffusion model, given none but a budget or a pretraining count: both phases.
    private func pretrainingPlan() throws -> PretrainingPlan? {
        let r = try request()
        guard r.method.type.inputs.contains(.diffusionModel), r.inputs[.diffusionModel] == nil else {
            if let flag = pretraining.givenFlags.first { throw CLIError("\(flag) is for a two-phase run (--method ect or ctm without --init or --teacher)") }
            return nil
        }
        guard runOptions.time != nil || pretraining.pretrainIters != nil else { return nil }
        if runOptions.time == nil && runOptions.iters == nil { throw CLIError("give --iters for the second phase with --pretrain-iters") }
        if runOptions.time != nil && pretraining.pretrainIters != nil { throw CLIError("--pretrain-iters is for runs with --iters; with --time give --pretrain-fraction") }
        return try PretrainingPlan(request: r, budget: runOptions.time?.budget, fraction: pretraining.pretrainFraction ?? PretrainingOptions.defaultFraction,
                                   pretrainIterations: pretraining.pretrainIters ?? 10_000, pretrainLearningRate: pretraining.pretrainLr)
    }

    private func runPretrained(_ plan: PretrainingPlan, in directory: RunDirectory) throws {
        let run = PretrainedRun(plan: plan, directory: directory)
        run.configure = configure
        run.onNote = note
        try explainingErrors { _ = try run.run() }
    }

    /// The run the options ask for; what is left open takes the library's defaults.
    func request() throws -> RunRequest {
        var r = RunRequest()
        r.method = general.method
        r.data = try DataSpec(parsing: data.data)
        r.model = general.model
        r.iterations = runOptions.iters ?? 10_000
        r.batchSize = general.batch
        r.learningRate = general.lr
        r.optimizer = general.optimizer
        r.emaDecay = general.emaDecay
        r.maxGradientNorm = general.maxGradNorm
        r.s1 = curriculum.s1
        r.seed = runOptions.seed
        r.immiscible = data.immiscible
        if let bss = data.bss {
            guard !r.data.isPointCloud else { throw CLIError("--bss works on images; \(r.data) is a 2-D point set") }
            r.bssRatio = bss
        }
        if let group = methodGroups.first(where: { type(of: $0).method == general.method }) {
            r.options = try group.options()
            r.inputs = group.inputs
        }
        return r
    }

    /// Library errors in the command line's words: which flag gives what is missing or wrong.
    func explainingErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as TrainingError {
            switch error {
            case let .missingInput(method, input):
                let flag = methodGroups.lazy.compactMap { type(of: $0).flag(for: input) }.first ?? input.rawValue
                throw CLIError("--method \(method.rawValue) needs \(flag) (\(inputHint(input)))")
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
