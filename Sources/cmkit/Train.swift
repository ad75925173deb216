// cmkit train: parses the options, connects them to the library's run set-up and training loop, prints.
import ArgumentParser
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKTraining
import CKMPI

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
        if runOptions.resume != nil {
            let given = runOptions.settingFlags + general.settingFlags + data.settingFlags + (curriculum.s1 != nil ? ["--s1"] : [])
                + methodGroups.flatMap(\.givenFlags) + pretraining.givenFlags
            if !given.isEmpty {
                throw ValidationError("a resumed run keeps the settings in its checkpoint; \(given.joined(separator: ", ")) cannot change "
                                      + "(only --save-every, --log-every, --eval-every and --threads can). Start a new run to change them.")
            }
        }
        for group in methodGroups where type(of: group).method != chosenMethod {
            if let flag = group.givenFlags.first {
                throw ValidationError("\(flag) is for --method \(type(of: group).method.rawValue), not \(chosenMethod.rawValue).")
            }
        }
    }

    func run() throws {
        // Under mpirun every rank runs this command; rank 0 writes the run's files, all train in step.
        guard MPICollective.launched else { return try train() }
        let mpi = try MPICollective()
        Train.collective = mpi
        do { try train() } catch {
            FileHandle.standardError.write(Data("Error on rank \(mpi.rank) of \(mpi.size): \(error)\n".utf8))
            mpi.abort()
        }
        if mpi.isPrimary && mpi.sumCalls > 0 {
            note(String(format: "MPI: %d ranks; %d all-reduce sums of %.2f MB each on average, %.4f s each (%.1f s in all)", mpi.size,
                        mpi.sumCalls, Double(mpi.sumBytes) / Double(mpi.sumCalls) / 1e6, mpi.sumSeconds / Double(mpi.sumCalls), mpi.sumSeconds))
        }
        mpi.finalize()
    }

    /// The processes of an mpirun job, or nil for a plain run.
    nonisolated(unsafe) static var collective: MPICollective? = nil
    var isPrimary: Bool { Train.collective?.isPrimary ?? true }

    private func train() throws {
        if let resume = runOptions.resume { return try explainingErrors { try self.resume(RunDirectory(path: resume)) } }
        runOptions.threading.apply()
        let directory = RunDirectory(path: runOptions.out!)
        if isPrimary { try explainingErrors { try prepareNewRun(in: directory) } }
        if isPrimary && usesImageRecipe {
            note("no --method: images get the ten-minute recipe (an EDM model on \(ImageRecipe.model.rawValue), then tuned with ect; "
                 + "see `cmkit train --help`); give --method to choose another"
                 + (recipeTakesTheLabels ? ". The data has labels, so the model is class-conditional and samples its classes in turn (--no-classes: unconditional)" : ""))
            if let weight = budgetChosenGuidance(classes: data.classes ?? recipeTakesTheLabels) {
                note("a budget of \(TimeBudget(seconds: ImageRecipe.unguidedFromSeconds)) or more: the tuning follows the EDM model's unguided sampler "
                     + "(--ect-guidance \(formatted(Float(weight)))), which samples better after that long; shorter budgets distill the guided one "
                     + "(w = \(formatted(Float(ImageRecipe.classGuidance)))) for class accuracy")
            }
        }
        try Train.collective?.barrier()
        if let plan = try explainingErrors({ try pretrainingPlan() }) { return try runPretrained(plan, in: directory) }
        let trainer = try explainingErrors { try Trainer.start(try request()) }
        let loop = TrainingLoop(trainer: trainer, directory: directory)
        configure(loop, settings: nil)
        loop.budget = runOptions.time?.budget
        try explainingErrors { try loop.run() }
    }

    /// A new run never mixes with an old one: a folder that holds a run is refused unless --force clears it.
    private func prepareNewRun(in directory: RunDirectory) throws {
        try directory.create()
        let files = directory.runFiles
        guard !files.isEmpty else { return }
        guard runOptions.force else {
            throw CLIError("\(RunDirectoryError.holdsARun(path: directory.path, files: files)); continue it with --resume "
                           + "\(directory.path), or start over with --force (deletes those files)")
        }
        let lock = try directory.lock()            // not while another process trains there
        lock.release()
        try directory.clear()
        note("--force: deleted \(files.joined(separator: ", ")) in \(directory.path)")
    }

    /// Continues a run with the settings in its checkpoint (and its thread count, unless --threads says otherwise).
    private func resume(_ directory: RunDirectory) throws {
        if let plan = try PretrainingPlan.read(from: directory), !FileManager.default.fileExists(atPath: directory.checkpoint.path) {
            let settings = (try? Checkpoint.read(from: directory.pretraining.checkpoint)).flatMap { RunSettings.stored(in: $0.metadata) }
            applyThreads(recorded: settings?.threads)
            if isPrimary { note("resuming the two-phase run in \(directory.path)") }
            return try runPretrained(plan, in: directory, settings: settings)
        }
        guard FileManager.default.fileExists(atPath: directory.checkpoint.path) else {
            throw CLIError("--resume \(directory.path): no checkpoint.safetensors there; start a new run with --out")
        }
        let checkpoint = try Checkpoint.read(from: directory.checkpoint)
        let settings = RunSettings.stored(in: checkpoint.metadata)
        applyThreads(recorded: settings?.threads)
        let trainer = try Trainer.restore(from: checkpoint, path: directory.checkpoint.path)
        if isPrimary { note("resuming \(trainer.config.data) / \(trainer.config.model.rawValue) at iteration \(trainer.step) of \(trainer.config.iterations)") }
        let loop = TrainingLoop(trainer: trainer, directory: directory)
        configure(loop, settings: settings)
        try loop.run()
    }

    /// The run's recorded thread count, unless --threads overrides it (then the run continues, not exactly).
    private func applyThreads(recorded: Int?) {
        if let recorded, let asked = runOptions.threading.threads, asked != recorded {
            note("the run used \(recorded) threads; at \(asked) it continues, but not bit for bit as it would have")
        }
        Parallel.configure(threads: runOptions.threading.threads ?? recorded ?? Parallel.threadCount)
    }

    func configure(_ loop: TrainingLoop, settings: RunSettings?) {
        loop.collective = Train.collective
        loop.saveEvery = runOptions.saveEvery ?? settings?.saveEvery ?? 1000
        loop.logEvery = runOptions.logEvery ?? settings?.logEvery
        loop.evalEvery = runOptions.evalEvery ?? settings?.evalEvery ?? 0
        loop.onProgress = { note($0.line) }
        loop.onNote = note
    }

    /// The run the options ask for; what is left open takes the library's defaults.
    func request() throws -> RunRequest {
        var r = RunRequest()
        r.method = chosenMethod
        r.data = try DataSpec(parsing: data.data ?? "toy:checkerboard")
        r.model = general.model
        r.iterations = runOptions.iters ?? 10_000
        r.replans = runOptions.replanned.map(\.replan)
        r.batchSize = general.batch
        r.learningRate = general.lr
        r.learningRateDecay = general.lrDecay
        r.optimizer = general.optimizer ?? .adam
        r.emaDecay = general.emaDecay
        r.maxGradientNorm = general.maxGradNorm
        r.s1 = curriculum.s1
        r.seed = runOptions.seed ?? 0
        r.immiscible = data.immiscible ?? .off
        r.classes = data.classes ?? recipeTakesTheLabels
        if data.labelDropout != nil && !r.classes { throw CLIError("--label-dropout is for class-conditional runs: add --classes") }
        r.labelDropout = data.labelDropout
        if let bss = data.bss {
            guard !r.data.isPointCloud else { throw CLIError("--bss works on images; \(r.data) is a 2-D point set") }
            r.bssRatio = bss
        }
        if let group = methodGroups.first(where: { type(of: $0).method == chosenMethod }) {
            r.options = try group.options()
            r.inputs = group.inputs
        }
        if usesImageRecipe {
            ImageRecipe.apply(to: &r)
            r.options = ect.options(over: ImageRecipe.options(classConditional: r.classes, budget: runOptions.time?.budget.seconds))
        }
        return r
    }

    /// Images without --method: the ten-minute recipe (ImageRecipe); points without it: ict.
    var usesImageRecipe: Bool {
        guard general.method == nil, let spec = try? DataSpec(parsing: data.data ?? "toy:checkerboard") else { return false }
        return !spec.isPointCloud
    }

    /// Neither --classes nor --no-classes, and the recipe trains on this data's labels.
    var recipeTakesTheLabels: Bool {
        guard data.classes == nil, usesImageRecipe, let spec = try? DataSpec(parsing: data.data ?? "toy:checkerboard") else { return false }
        return ImageRecipe.trainsClasses(on: spec)
    }

    var chosenMethod: MethodName { general.method ?? (usesImageRecipe ? ImageRecipe.method : .ict) }

    /// The recipe's guidance weight when the budget chose one other than a count's (so repeating the run with
    /// counts must name it), or nil.
    func budgetChosenGuidance(classes: Bool) -> Double? {
        guard usesImageRecipe, classes, ect.ectGuidance == nil, let budget = runOptions.time?.budget.seconds else { return nil }
        let weight = ImageRecipe.classGuidance(forBudget: budget)
        return weight == ImageRecipe.classGuidance(forBudget: nil) ? nil : weight
    }

}
