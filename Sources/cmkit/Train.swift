// cmkit train: iCT training with progress lines, periodic checkpoints and sample pictures, exact resume.
import ArgumentParser
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKImageIO

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model (iCT, an EDM teacher, or CTM) and write checkpoints and sample pictures to --out.",
        discussion: """
            Methods: ict (improved consistency training), edm (an EDM denoiser, sampled with Heun; the teacher \
            CTM distils), ctm (Consistency Trajectory Model distilled from --teacher, an edm run's checkpoint; the \
            student starts from the teacher's weights). \
            Writes RUN/checkpoint.safetensors (online, EMA and optimizer state), RUN/train.log (CSV), \
            RUN/samples-<iter>.png (samples from the EMA weights: one step; Heun with 18 steps for edm) every \
            --save-every iterations and at the end, and RUN/loss.png. --resume RUN/ continues a run exactly where it stopped.
            """)

    @Option(help: "Training method: ict | lct | edm | ctm.") var method = "ict"
    @Option(help: "Latent CT: the autoencoder (written by `cmkit train-autoencoder`).") var autoencoder: String?
    @Option(help: "Latent CT: consistency metric, cauchy | huber (iCT's pseudo-Huber, for ablations).") var metric = "cauchy"
    @Option(help: "Latent CT: the diffusion loss at low-noise steps, on | off.") var diffusionLoss = "on"
    @Option(help: "Latent CT: the adaptive scaling-c schedule, on | off (off: 0.00054 sqrt(d) throughout).") var adaptiveC = "on"
    @Option(help: "Latent CT: minibatch OT coupling of latents and noise, on | off.") var ot = "on"
    @Option(help: "CTM: the EDM teacher's checkpoint (written by `cmkit train --method edm`).") var teacher: String?
    @Option(help: "CTM: points of the Karras time grid the teacher's Heun solver walks.") var ctmGrid = 18
    @Option(help: "CTM: weight of the DSM term, a number or 'adaptive' (gradient-norm balance at the output layer).")
    var dsmWeight = "adaptive"
    @Option(help: "CTM: EMA rate of the target network used for the jumps to sigma_min.") var targetEma: Float = 0.999
    @Option(help: "Training data: \(DataSpec.help).") var data = "toy:checkerboard"
    @Option(help: "Network: \(ModelName.allValueStrings.joined(separator: " | ")).") var model: ModelName?
    @Option(help: "Training iterations (the curriculum is laid out over this many).") var iters = 10_000
    @Option(help: "Batch size.") var batch = 128
    @Option(help: "Learning rate (default 3e-4 for mlp-toy, 1e-4 for unet-s).") var lr: Float?
    @Option(help: "Optimizer: adam | radam.") var optimizer = "adam"
    @Option(help: "EMA decay of the sampling weights (default: half-life of 10% of --iters).") var emaDecay: Float?
    @Option(help: "Clip the gradient norm to this value (off by default).") var maxGradNorm: Float?
    @Option(help: "Curriculum s1: the final number of discretization intervals (default 1280; 640 for lct).") var s1: Int?
    @Option(help: "Immiscible noise assignment: off | exact | quantized (binary16 distances, as the paper's code).")
    var immiscible = "off"
    @Option(help: "Batch Styles Standardization of each image batch with this band ratio r in (0, 1] (off by default).")
    var bss: Float?
    @Option(help: "Random seed: the same seed gives the same run.") var seed: UInt64 = 0
    @Option(help: "Output folder for the run.") var out: String?
    @Option(help: "Write a checkpoint and sample picture every N iterations (0: only at the end).") var saveEvery = 1000
    @Option(help: "Print a progress line every N iterations (default: about 40 lines per run).") var logEvery: Int?
    @Option(help: "Continue the run in this folder from its checkpoint.") var resume: String?
    @Option(help: "Every N iterations, sample with the EMA weights (1 and 2 steps) and log the quality metric to RUN/eval.csv (0: off).")
    var evalEvery = 0
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard TrainingConfig.methods.contains(method) else {
            throw ValidationError("--method \(method) is unknown; use \(TrainingConfig.methods.joined(separator: ", ")).")
        }
        if method == "ctm" && teacher == nil && resume == nil {
            throw ValidationError("--method ctm needs --teacher EDM.safetensors (train one with --method edm).")
        }
        if method != "ctm" && teacher != nil { throw ValidationError("--teacher is for --method ctm.") }
        if method == "lct" && autoencoder == nil && resume == nil {
            throw ValidationError("--method lct needs --autoencoder AE.safetensors (train one with `cmkit train-autoencoder`).")
        }
        if method != "lct" && autoencoder != nil { throw ValidationError("--autoencoder is for --method lct.") }
        if !["cauchy", "huber"].contains(metric) { throw ValidationError("--metric must be cauchy or huber.") }
        for (name, value) in [("--diffusion-loss", diffusionLoss), ("--adaptive-c", adaptiveC), ("--ot", ot)] where !["on", "off"].contains(value) {
            throw ValidationError("\(name) must be on or off.")
        }
        if method == "lct" && ot == "on" && immiscible != "off" {
            throw ValidationError("--ot on already pairs latents and noise by exact assignment; leave --immiscible off (or use --ot off).")
        }
        if ctmGrid < 3 { throw ValidationError("--ctm-grid must be at least 3.") }
        if dsmWeight != "adaptive" && !((Float(dsmWeight) ?? -1) >= 0) {
            throw ValidationError("--dsm-weight must be 'adaptive' or a number >= 0.")
        }
        if !(targetEma >= 0 && targetEma < 1) { throw ValidationError("--target-ema must be in [0, 1).") }
        if iters < 1 { throw ValidationError("--iters must be positive.") }
        if batch < 1 { throw ValidationError("--batch must be positive.") }
        if let lr, !(lr > 0) { throw ValidationError("--lr must be positive.") }
        if let emaDecay, !(emaDecay >= 0 && emaDecay < 1) { throw ValidationError("--ema-decay must be in [0, 1).") }
        if !["adam", "radam"].contains(optimizer) { throw ValidationError("--optimizer must be adam or radam.") }
        if saveEvery < 0 { throw ValidationError("--save-every must not be negative.") }
        if NoiseAssignment(rawValue: immiscible) == nil { throw ValidationError("--immiscible must be off, exact or quantized.") }
        if let bss, !(bss > 0 && bss <= 1) { throw ValidationError("--bss must be in (0, 1].") }
        if resume == nil && out == nil { throw ValidationError("give --out RUN/ for a new run, or --resume RUN/.") }
    }

    func run() throws {
        threading.apply()
        let runDirectory: String
        let trainer: Trainer
        if let resume {
            runDirectory = resume
            let url = URL(fileURLWithPath: resume).appendingPathComponent("checkpoint.safetensors")
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw CLIError("--resume \(resume): no checkpoint.safetensors there; start a new run with --out")
            }
            trainer = try Trainer.restore(from: try Checkpoint.read(from: url), path: url.path)
            note("resuming \(trainer.config.data) / \(trainer.config.model) at iteration \(trainer.step) of \(trainer.config.iterations)")
        } else {
            runDirectory = out!
            trainer = try newTrainer()
        }
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        if evalEvery < 0 { throw ValidationError("--eval-every must not be negative.") }
        try TrainingRun(trainer: trainer, directory: runDirectory, saveEvery: saveEvery, logEvery: logEvery, evalEvery: evalEvery).run()
    }

    private func newTrainer() throws -> Trainer {
        let spec = try DataSpec(parsing: data)
        let dataset = try spec.open()
        let latentSpace = try autoencoder.map { path in
            try LatentSpace.load(from: try Checkpoint.read(from: URL(fileURLWithPath: path)), path: path)
        }
        if let latentSpace, latentSpace.autoencoder.imageShape != dataset.sampleShape {
            throw CLIError("--autoencoder \(autoencoder!) encodes images \(latentSpace.autoencoder.imageShape), but \(spec) has \(dataset.sampleShape)")
        }
        let sampleShape = latentSpace?.autoencoder.latentShape ?? dataset.sampleShape
        let name = model ?? (method == "lct" ? .latentNet : spec.isPointCloud ? .mlpToy : .unetS)
        if name.isLatentNetwork != (method == "lct") {
            throw CLIError(method == "lct" ? "--method lct trains a latent network: use --model latent-net or latent-net-gn"
                                           : "--model \(name.rawValue) is for --method lct (latents)")
        }
        if let why = name.incompatibility(with: sampleShape) { throw CLIError(why) }
        var config = TrainingConfig()
        config.method = method
        config.model = name.rawValue
        config.data = spec.description
        config.sampleShape = sampleShape
        config.iterations = iters
        config.batchSize = batch
        config.learningRate = lr ?? (name == .mlpToy ? 3e-4 : 1e-4)
        config.optimizer = optimizer
        config.emaDecay = emaDecay
        config.maxGradientNorm = maxGradNorm
        config.s1 = s1 ?? (method == "lct" ? 640 : 1280)
        config.seed = seed
        config.immiscible = immiscible
        if let bss {
            guard dataset.sampleShape.count == 3 else { throw CLIError("--bss works on images; \(spec) has samples of shape \(dataset.sampleShape)") }
            config.bssRatio = bss
        }
        if method == "lct" {
            var lct = LCTConfig()
            lct.metric = metric
            lct.diffusionLoss = diffusionLoss == "on"
            lct.adaptiveC = adaptiveC == "on"
            lct.otCoupling = ot == "on"
            config.lct = lct
            return try Trainer(config: config, network: try config.makeNetwork(), latentSpace: latentSpace)
        }
        guard method == "ctm", let teacher else { return try Trainer(config: config, network: try config.makeNetwork()) }

        var ctm = CTMConfig()
        ctm.gridPoints = ctmGrid
        ctm.dsmWeight = Float(dsmWeight)
        ctm.targetEMADecay = targetEma
        config.ctm = ctm
        let edm = try loadTrainedModel(from: URL(fileURLWithPath: teacher), weights: .ema)
        guard edm.config.method == "edm" else {
            throw CLIError("--teacher \(teacher) was trained with --method \(edm.config.method); CTM needs an edm checkpoint")
        }
        guard edm.config.model == config.model, edm.config.sampleShape == config.sampleShape else {
            throw CLIError("--teacher \(teacher) is \(edm.config.model) on samples of shape \(edm.config.sampleShape), but this run is \(config.model) on \(config.sampleShape); use the same --model and --data")
        }
        let student = try config.makeNetwork()
        let copied = copyMatchingValues(from: edm.network, to: student)
        note("CTM student initialised from the teacher (\(copied) of \(student.parameters.count) tensors; the s embedding starts silent); teacher: \(teacher) at iteration \(edm.step)")
        return try Trainer(config: config, network: student, teacher: edm.network)
    }
}

/// The loop around a Trainer: batches, progress, periodic files, and the NaN stop.
struct TrainingRun {
    let trainer: Trainer
    let directory: String
    let saveEvery: Int
    let logEvery: Int?
    var evalEvery = 0

    func run() throws {
        let config = trainer.config
        var batcher = try StepBatcher(dataset: try trainingData(), batchSize: config.batchSize, seed: config.seed)
        let logURL = URL(fileURLWithPath: directory).appendingPathComponent("train.log")
        try prepareLog(logURL)
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        defer { try? log.close() }

        let every = logEvery ?? max(1, config.iterations / 40)
        var evaluationSeconds = 0.0
        let evaluator = try evalEvery > 0 ? TrainingEvaluator(config: config, directory: directory, resumedAt: trainer.step) : nil
        let start = Clock.seconds(), firstStep = trainer.step
        var windowLoss = 0.0, windowCount = 0
        note("training \(config.model) (\(trainer.network.parameterCount) parameters) on \(config.data): \(config.iterations) iterations, batch \(config.batchSize), lr \(config.learningRate), EMA decay \(config.resolvedEMADecay), immiscible \(config.immiscible), BSS \(config.bssRatio.map { String($0) } ?? "off")")
        while trainer.step < config.iterations {
            let k = trainer.step
            var rng = trainer.rng(forStep: k)
            let batch = batcher.batch(forStep: k)
            let report: StepReport
            do {
                report = try trainer.trainStep(batch: batch, rng: &rng)
            } catch let error as TrainingError {
                throw CLIError("\(error) (checkpoint: \(directory)/checkpoint.safetensors)")
            }
            windowLoss += Double(report.loss); windowCount += 1
            let elapsed = Clock.seconds() - start
            log.write("\(report.step),\(report.loss),\(report.pointCount),\(String(format: "%.3f", elapsed))\n".data(using: .utf8)!)
            if report.step % every == 0 || report.step == config.iterations {
                let rate = Double(report.step - firstStep) / max(elapsed, 1e-9)
                let eta = Double(config.iterations - report.step) / rate
                note(String(format: "iter %d/%d  loss %.4f  N=%d  %.2f it/s  ETA %@", report.step, config.iterations,
                            windowLoss / Double(windowCount), report.pointCount, rate, formatDuration(eta)))
                windowLoss = 0; windowCount = 0
            }
            if (saveEvery > 0 && report.step % saveEvery == 0) || report.step == config.iterations {
                try save()
            }
            if let evaluator, report.step % evalEvery == 0 || report.step == config.iterations {
                // Training time only: evaluation time is not counted against the run.
                let t0 = Clock.seconds()
                try evaluator.evaluate(trainer, elapsed: t0 - start - evaluationSeconds)
                evaluationSeconds += Clock.seconds() - t0
            }
        }
        try writeLossPlot(logURL: logURL)
        note("done: \(directory)/checkpoint.safetensors, samples-\(trainer.step).png, loss.png")
    }

    /// The data the network sees: the data set itself, or for latent CT its normalised latents, encoded once.
    func trainingData() throws -> any Dataset {
        let spec = try DataSpec(parsing: trainer.config.data)
        guard let space = trainer.latentSpace else { return try spec.open() }
        guard let images = try spec.trainingImages(seed: trainer.config.seed) else { throw CLIError("latent CT needs image data, not \(spec)") }
        let t0 = Clock.seconds()
        let latents = space.encode(images)
        note(String(format: "encoded %d training images to latents %@ in %.1f s", images.shape[0], "\(space.autoencoder.latentShape)", Clock.seconds() - t0))
        return TensorDataset(latents)
    }

    /// A new run starts the log; a resumed one drops the lines written after its checkpoint
    /// (an interrupted run logs past its last save), so every iteration appears once.
    func prepareLog(_ url: URL) throws {
        let header = "iteration,loss,N,seconds\n"
        guard trainer.step > 0, let old = try? String(contentsOf: url, encoding: .utf8) else {
            try header.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let kept = old.split(separator: "\n").dropFirst().filter { line in
            Int(line.split(separator: ",").first ?? "").map { $0 <= trainer.step } ?? false
        }
        try (header + kept.map { $0 + "\n" }.joined()).write(to: url, atomically: true, encoding: .utf8)
    }

    /// Checkpoint first (atomic), then the preview picture from the EMA weights.
    func save() throws {
        let url = URL(fileURLWithPath: directory).appendingPathComponent("checkpoint.safetensors")
        try trainer.checkpoint().write(to: url)
        let isPoints = trainer.config.sampleShape == [2]
        let plan = SamplingPlan.preview(method: trainer.config.method)
        let samples = try trainer.withEMAWeights {
            trainer.images(of: try plan.sample(network: trainer.network, count: isPoints ? 2048 : 64, seed: 7))
        }
        try writeSamplePicture(samples, to: "\(directory)/samples-\(trainer.step).png",
                               title: "\(plan.label), ITER \(trainer.step)")
    }

    func writeLossPlot(logURL: URL) throws {
        let lines = try String(contentsOf: logURL, encoding: .utf8).split(separator: "\n").dropFirst()
        var xs: [Double] = [], ys: [Double] = []
        for line in lines {
            let f = line.split(separator: ",")
            if f.count >= 2, let x = Double(f[0]), let y = Double(f[1]) { xs.append(x); ys.append(y) }
        }
        guard !xs.isEmpty else { return }
        // A running mean over ~1% of the run: single-batch losses are too noisy to read.
        let window = max(1, xs.count / 100)
        var smooth: [Double] = [], acc = 0.0
        for i in ys.indices {
            acc += ys[i]
            if i >= window { acc -= ys[i - window] }
            smooth.append(acc / Double(min(i + 1, window)))
        }
        let plot = Plot.lines([PlotSeries(name: "loss (running mean)", x: xs, y: smooth)],
                              title: "\(trainer.config.method.uppercased()) LOSS", xLabel: "iteration", yLabel: "loss", logY: true)
        try PNG.write(plot, to: "\(directory)/loss.png")
    }
}

/// Periodic quality measurement during training: samples from the EMA weights (one and two steps; Heun
/// with 18 steps for an EDM model), scored
/// with `compare`'s metric, appended to RUN/eval.csv (iteration, seconds, steps, metric columns...).
struct TrainingEvaluator {
    let metric: QualityMetric
    let url: URL
    let count: Int

    init(config: TrainingConfig, directory: String, resumedAt step: Int) throws {
        let isPoints = config.sampleShape == [2]
        count = isPoints ? 2048 : 512
        metric = try QualityMetric.make(for: try DataSpec(parsing: config.data), isPoints: isPoints, classifierPath: nil, referenceCount: count)
        url = URL(fileURLWithPath: directory).appendingPathComponent("eval.csv")
        if step == 0 || !FileManager.default.fileExists(atPath: url.path) {
            try ("iteration,seconds,steps," + metric.columns.joined(separator: ",") + "\n").write(to: url, atomically: true, encoding: .utf8)
        }
    }

    func evaluate(_ trainer: Trainer, elapsed: Double) throws {
        var lines = ""
        for var plan in SamplingPlan.evaluation(method: trainer.config.method) {
            plan.trainingGridPoints = trainer.config.ctm?.gridPoints
            let samples = try trainer.withEMAWeights {
                trainer.images(of: try plan.sample(network: trainer.network, count: count, seed: 0xE7A1))
            }
            let scores = metric.evaluate(samples)
            lines += "\(trainer.step),\(String(format: "%.3f", elapsed)),\(plan.steps)," + scores.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n"
        }
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        handle.write(lines.data(using: .utf8)!)
        try handle.close()
    }
}
