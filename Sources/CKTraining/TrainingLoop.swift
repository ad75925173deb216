// The loop around a Trainer: batches, progress, the CSV log, periodic checkpoints and previews,
// evaluation, the NaN stop. A resumed run is a trainer restored from the run's checkpoint; both take
// this one path. Front ends listen through `onProgress` and `onNote`.
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKImageIO

public final class TrainingLoop {
    /// The trainer; a time budget replaces it by one with the planned iteration count (and re-planned ones).
    public internal(set) var trainer: Trainer
    public let directory: RunDirectory
    /// Checkpoint and preview every N iterations (0: only at the end).
    public var saveEvery = 1000
    /// A progress report every N iterations (nil: about 40 per run).
    public var logEvery: Int? = nil
    /// Evaluation every N iterations into eval.csv (0: off).
    public var evalEvery = 0
    /// Plan the iteration count of a fresh run to end within this wall-clock time (see TimeBudget.swift).
    public var budget: TimeBudget? = nil
    /// What the budget decided, once the run has planned it.
    public private(set) var plan: BudgetPlan? = nil
    /// A planned run re-measures its pace on the way and re-plans its count when it would miss the budget
    /// (TimeBudget.swift); the first phase of a two-phase run leaves that to the second, which gets the rest.
    public var keepsToBudget = true
    /// The processes that train together (set on the trainer when the run starts); nil keeps the trainer's.
    public var collective: (any Collective)? = nil
    /// The data the network sees; nil: the config's data set (encoded to latents for a latent method).
    public var data: (any Dataset)? = nil
    public var onProgress: (TrainingProgress) -> Void = { _ in }
    public var onNote: (String) -> Void = { _ in }

    public init(trainer: Trainer, directory: RunDirectory) {
        self.trainer = trainer
        self.directory = directory
    }

    /// Trains to the config's iteration count (or to `stop`, saving there), writing the run's files; throws
    /// `TrainingError.nonFiniteLoss` (the last checkpoint is kept as it was) or the first I/O error.
    public func run(until stop: Int? = nil) throws {
        let runStart = Clock.seconds()
        if let collective { trainer.collective = collective }
        // With several processes, rank 0 alone writes the run's files and reports; the others train in step.
        let primary = trainer.collective.isPrimary
        let lock = primary ? try directory.lock() : nil
        defer { lock?.release() }
        let note: (String) -> Void = { if primary { self.onNote($0) } }
        if let summary = trainer.method.setupSummary, trainer.step == 0 { note(summary) }
        var batcher = try StepBatcher(dataset: try data ?? trainer.trainingData(note: note), batchSize: trainer.config.batchSize,
                                      seed: trainer.config.seed)
        if trainer.step == 0 { try trainer.broadcastWeights() }
        let evaluator = evalEvery > 0 && primary ? try TrainingEvaluator(trainer: trainer, file: directory.evaluationLog) : nil
        if let budget, trainer.step == 0 {
            let (planned, plan) = try self.plan(budget: budget, startedAt: runStart, batcher: &batcher, evaluator: evaluator)
            trainer = planned
            self.plan = plan
            note(plan.summary)
        }
        var config = trainer.config
        var end = min(stop ?? config.iterations, config.iterations)
        if primary { try prepareLog() }
        let log = primary ? try LogFile(appendingTo: directory.log) : nil

        let every = logEvery ?? max(1, config.iterations / 40)
        var evaluationSeconds = 0.0
        let start = Clock.seconds(), firstStep = trainer.step
        var paceChecks = plan != nil && keepsToBudget && stop == nil ? BudgetPlan.paceCheckShares : []
        // The pace the current count was planned at: the probe's, then that of the last re-plan.
        var lastCheck = (step: firstStep, time: start), plannedPace = plan?.stepSeconds ?? 0
        if trainer.step >= end { note("the run is already at iteration \(trainer.step) of \(config.iterations): nothing to train") }
        var windowLoss = 0.0, windowCount = 0
        let processes = trainer.collective.size > 1 ? ", \(trainer.collective.size) processes" : ""
        note("training \(config.model.rawValue) (\(trainer.network.parameterCount) parameters) on \(config.data): "
               + "\(config.iterations) iterations, batch \(config.batchSize), lr \(config.learningRate)\(config.learningRateDecay.map { " (falling to 0 over the last \(Int(($0 * 100).rounded()))%)" } ?? ""), EMA decay \(config.resolvedEMADecay), "
               + "immiscible \(config.immiscible.rawValue), BSS \(config.bssRatio.map { String($0) } ?? "off")\(processes)")
        while trainer.step < end {
            let k = trainer.step
            var rng = trainer.rng(forStep: k)
            let report = try trainer.trainStep(batchOf: k, from: &batcher, rng: &rng)
            windowLoss += Double(report.loss); windowCount += 1
            let elapsed = Clock.seconds() - start
            try log?.append("\(report.step),\(report.loss),\(report.pointCount),\(String(format: "%.3f", elapsed))\n")
            if primary && (report.step % every == 0 || report.step == config.iterations) {
                onProgress(TrainingProgress(iteration: report.step, iterations: config.iterations, loss: windowLoss / Double(windowCount),
                                            pointCount: report.pointCount,
                                            iterationsPerSecond: Double(report.step - firstStep) / max(elapsed, 1e-9), elapsed: elapsed,
                                            budgetLeft: budget.map { $0.seconds - (Clock.seconds() - runStart) }))
                windowLoss = 0; windowCount = 0
            }
            if primary && ((saveEvery > 0 && report.step % saveEvery == 0) || report.step == end) {
                try save()
            }
            if let evaluator, report.step % evalEvery == 0 || report.step == end {
                // Training time only: evaluation time is not counted against the run.
                let t0 = Clock.seconds()
                try evaluator.evaluate(trainer, elapsed: t0 - start - evaluationSeconds)
                evaluationSeconds += Clock.seconds() - t0
            }
            if let plan, let share = paceChecks.first, Double(trainer.step) >= share * Double(config.iterations), trainer.step < end {
                paceChecks.removeFirst()
                // A few steps say little about the pace (a re-plan that cut the count can bring the next check
                // close): a check less than a tenth of the run after the last is skipped.
                if trainer.step - lastCheck.step >= max(1, config.iterations / 10) {
                    let now = Clock.seconds(), steps = trainer.step - lastCheck.step
                    if let replanned = try keepToBudget(plan, startedAt: runStart, steps: steps, seconds: now - lastCheck.time,
                                                        plannedPace: plannedPace) {
                        note(replanned)
                        config = trainer.config
                        end = config.iterations
                        plannedPace = (now - lastCheck.time) / Double(max(1, steps))
                    }
                    lastCheck = (trainer.step, now)
                }
            }
        }
        if primary { try writeLossPlot() }
        note("done: \(directory.checkpoint.path), \(directory.preview(step: trainer.step).lastPathComponent), loss.png")
    }

    /// A new run starts the log; a resumed one drops the lines written after its checkpoint
    /// (an interrupted run logs past its last save), so every iteration appears once.
    func prepareLog() throws {
        let header = "iteration,loss,N,seconds\n"
        guard trainer.step > 0, let old = try? String(contentsOf: directory.log, encoding: .utf8) else {
            try header.write(to: directory.log, atomically: true, encoding: .utf8)
            return
        }
        let kept = old.split(separator: "\n").dropFirst().filter { line in
            Int(line.split(separator: ",").first ?? "").map { $0 <= trainer.step } ?? false
        }
        try (header + kept.map { $0 + "\n" }.joined()).write(to: directory.log, atomically: true, encoding: .utf8)
    }

    /// Checkpoint first (atomic), then the preview picture from the EMA weights.
    public func save() throws { try save(to: directory.checkpoint, preview: true) }

    /// The checkpoint to `url`; the preview is sampled in any case (its time counts), written when asked.
    func save(to url: URL, preview: Bool) throws {
        var checkpoint = try trainer.checkpoint()
        let settings = RunSettings(saveEvery: saveEvery, logEvery: logEvery, evalEvery: evalEvery, threads: Parallel.threadCount)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        checkpoint.metadata[RunSettings.key] = String(decoding: try encoder.encode(settings), as: UTF8.self)
        try checkpoint.write(to: url)
        let plan = SamplingPlan.preview(trainer.config.method.type)
        let samples = try trainer.withEMAWeights {
            try plan.sample(network: trainer.network, count: trainer.config.sampleKind == .points ? 2048 : 64, seed: 7,
                            context: trainer.samplingContext)
        }
        let picture = SamplePicture.bitmap(samples, title: "\(plan.label), ITER \(trainer.step)")
        if preview { try PNG.write(picture, to: directory.preview(step: trainer.step).path) }
    }

    /// The loss against iterations, as a running mean over about 1% of the run.
    func writeLossPlot() throws {
        let lines = try String(contentsOf: directory.log, encoding: .utf8).split(separator: "\n").dropFirst()
        var xs: [Double] = [], ys: [Double] = [], markers: [(x: Double, label: String)] = []
        var lastN: Int? = nil
        for line in lines {
            let f = line.split(separator: ",")
            if f.count >= 2, let x = Double(f[0]), let y = Double(f[1]) { xs.append(x); ys.append(y) }
            // Where the curriculum changes the number of noise levels, the loss changes scale.
            if f.count >= 3, let x = Double(f[0]), let n = Int(f[2]), n > 0 {
                if let lastN, n != lastN { markers.append((x, "N=\(n)")) }
                lastN = n
            }
        }
        guard !xs.isEmpty else { return }
        // Single-batch losses are too noisy to read.
        let window = max(1, xs.count / 100)
        var smooth: [Double] = [], acc = 0.0
        for i in ys.indices {
            acc += ys[i]
            if i >= window { acc -= ys[i - window] }
            smooth.append(acc / Double(min(i + 1, window)))
        }
        let plot = Plot.lines([PlotSeries(name: "loss (running mean)", x: xs, y: smooth)],
                              title: "\(trainer.config.method.rawValue.uppercased()) LOSS", xLabel: "iteration", yLabel: "loss", logY: true,
                              markers: markers)
        try PNG.write(plot, to: directory.lossPlot.path)
    }
}
