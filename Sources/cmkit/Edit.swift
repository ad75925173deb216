// cmkit edit: zero-shot editing with a trained consistency model (inpainting, super-resolution, colorization,
// denoising; CM Algorithm 4) and interpolation between two seeds, to a labelled PNG grid and raw results.
import ArgumentParser
import Foundation
import CKTensor
import CKConsistency
import CKImageIO
import CKDatasets

enum EditPrior: String, CaseIterable, ExpressibleByArgument { case mean, none }

enum EditTaskName: String, CaseIterable, ExpressibleByArgument {
    case inpaint, superres, colorize, denoise, interpolate
}

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edit images with a trained consistency model: inpaint, super-resolve, colorize, denoise, or interpolate between two seeds.",
        discussion: "Consistency Models' Algorithm 4 with the checkpoint's own sampler (iCT, ECT: consistency sampling; CTM: "
            + "deterministic jumps): start from what is known plus noise, and after every step put the known "
            + "part back (inpaint: the pixels where --mask is white, bit for bit; superres: the mean of each --factor block; "
            + "colorize: the luminance), re-noise and step again. denoise starts at --sigma from the noisy images themselves. "
            + "The grid has a row per input: the input, what is known of it, then --variations results for each step count. "
            + "interpolate draws the two seeds' noises (those of `cmkit sample --seed A`) and slerps them: --count points in a "
            + "row per step count, the ends being the seeds' samples. Latent models can only interpolate. With --reference (the "
            + "true images) edit scores itself: the mean squared error of all results per step count, beside a baseline that "
            + "uses the same inputs without a model, printed and written to OUT-errors.csv. Starts: inpaint, superres and colorize "
            + "fill what is unknown with the training mean image (--prior) and start at --start-sigma 1.5, the levels of n steps "
            + "being 1.5, 0.375, ... (each a quarter of the last); --start-sigma 80 starts from pure noise at the top level as the "
            + "paper's Algorithm 4 does, which at 1 or 2 steps gives a sample with the known part pasted in.")

    @Option(help: "Checkpoint written by `cmkit train`.") var checkpoint: String
    @Option(help: "What to do.") var task: EditTaskName
    @Option(help: "Images to edit: a PNG, a folder of PNGs, or an .npy (N, C, H, W) in [-1, 1], of the model's size.") var image: String?
    @Option(help: "The true images the inputs came from (like --image; for inpaint, superres and colorize of RGB inputs usually --image itself): print and write OUT-errors.csv with each step count's mean squared error in [-1, 1] units (inpaint: over the filled pixels), that of each input's mean result, and a baseline's (inpaint: the training set's mean image; superres: the block means; colorize: gray; denoise: the input).") var reference: String?
    @Option(help: "inpaint: a black-and-white PNG of the images' size; white = keep, black = fill.") var mask: String?
    @Option(parsing: .unconditional, help: "superres: side of the blocks whose means are known (2 or 4).") var factor: Int?
    @Option(parsing: .unconditional, help: "denoise: the noise level of the input images (their noise std in [-1, 1] units).") var sigma: Float?
    @Option(help: "interpolate: the two seeds, A,B (the noises of `cmkit sample --seed A` and --seed B).") var seeds: String?
    @Option(parsing: .unconditional, help: "interpolate: points from A to B, both ends included (default 8).") var count: Int?
    @Option(help: "Step counts, e.g. 1,2: a set of results for each (default 1,2).") var steps: String?
    @Option(help: "Instead of --steps: explicit level lists separated by ';', e.g. '3;3,0.8' (consistency: the levels visited, the first the start; CTM: jump times).")
    var sigmas: String?
    @Option(parsing: .unconditional, help: "Results per input and step count (default 4; not for interpolate).") var variations: Int?
    @Option(parsing: .unconditional, help: "Seed of the editing noise: result v of input i is the same for any number of inputs.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "inpaint, superres, colorize: the noise level the chain starts at (default 1.5; 80: the paper's start from pure noise).")
    var startSigma: Float?
    @Option(help: "inpaint, superres, colorize: what fills the unknown part of the start: mean (the training mean image, when the checkpoint's data can be read) | none (zero).")
    var prior: EditPrior = .mean
    @Option(help: "Weights to edit with: ema | online.") var weights: WeightChoice = .ema
    @Option(help: "Output PNG (the grid).") var out: String
    @Option(help: "Also write the results as float32 .npy (R, C, H, W): step counts, then inputs, then variations.") var npy: String?
    @OptionGroup var threading: ThreadOptions

    /// The options each task needs, and those only some tasks take.
    private var given: [(flag: String, present: Bool, tasks: [EditTaskName])] {
        [("--image", image != nil, [.inpaint, .superres, .colorize, .denoise]), ("--mask", mask != nil, [.inpaint]),
         ("--factor", factor != nil, [.superres]), ("--sigma", sigma != nil, [.denoise]), ("--seeds", seeds != nil, [.interpolate]),
         ("--count", count != nil, [.interpolate]), ("--variations", variations != nil, [.inpaint, .superres, .colorize, .denoise]),
         ("--reference", reference != nil, [.inpaint, .superres, .colorize, .denoise])]
    }

    func validate() throws {
        let needs: [EditTaskName: [String]] = [.inpaint: ["--image", "--mask"], .superres: ["--image", "--factor"], .colorize: ["--image"],
                                               .denoise: ["--image", "--sigma"], .interpolate: ["--seeds"]]
        for (flag, present, tasks) in given {
            if !present && needs[task]!.contains(flag) {
                throw ValidationError("--task \(task.rawValue) needs \(flag) " + Self.example[flag]!)
            }
            if present && !tasks.contains(task) {
                throw ValidationError("\(flag) is for --task \(tasks.map(\.rawValue).joined(separator: ", ")), not \(task.rawValue)")
            }
        }
        if let factor, factor < 2 { throw ValidationError("--factor must be at least 2 (2 or 4: the side of the averaged blocks).") }
        if let sigma, !(sigma > 0 && sigma.isFinite) { throw ValidationError("--sigma must be a positive number (the inputs' noise level).") }
        if let count, !(2...256).contains(count) { throw ValidationError("--count must be from 2 to 256 (the two ends and the points between).") }
        if let variations, !(1...64).contains(variations) { throw ValidationError("--variations must be from 1 to 64.") }
        if steps != nil && sigmas != nil { throw ValidationError("give --steps or --sigmas, not both.") }
        if let sigmas, task == .denoise { throw ValidationError("--task denoise starts at --sigma; its levels follow --steps, not --sigmas (\(sigmas)).") }
        let stepCounts: [Int] = try parseList(steps ?? "1,2", option: "--steps")
        if stepCounts.contains(where: { !(1...1000).contains($0) }) { throw ValidationError("--steps must be step counts from 1 to 1000, e.g. 1,2.") }
        if let seeds { _ = try seedPair(seeds) }
    }

    private static let example = ["--image": "(a PNG, a folder of PNGs or an .npy of images to edit)",
                                  "--mask": "(a black-and-white PNG of the images' size, white = keep)",
                                  "--factor": "(2 or 4: the side of the blocks whose means are known)",
                                  "--sigma": "(the noise level of the input images, e.g. 0.5)",
                                  "--seeds": "(two seeds, e.g. 3,8)"]

    private func seedPair(_ text: String) throws -> (UInt64, UInt64) {
        let values: [UInt64] = try parseList(text, option: "--seeds")
        guard values.count == 2 else { throw ValidationError("--seeds takes two seeds, e.g. 3,8; got \(values.count)") }
        return (values[0], values[1])
    }

    func run() throws {
        threading.apply()
        try refuseOverwritingInputs(outputs: [("--out", out), ("--npy", npy), ("the error table", reference.map { _ in errorsPath })],
                                    inputs: [("--checkpoint", checkpoint), ("--image", image), ("--mask", mask), ("--reference", reference)])
        let model = try loadTrainedModel(from: URL(fileURLWithPath: checkpoint), weights: weights)
        guard model.sampleKind == .images else {
            throw CLIError("--checkpoint \(checkpoint): cmkit edit works on image models, and this one makes 2-D points")
        }
        let plans = try editPlans(model)
        let t0 = Clock.seconds()
        let (panels, results) = try explainingEditErrors {
            task == .interpolate ? try interpolation(model, plans) : try editing(model, plans)
        }
        try PNG.write(ImageGrid.sideBySide(panels), to: out)
        if let npy { try NPY.write(results, to: npy) }
        note(String(format: "%@: %d results, %@ weights at iteration %d, %@ (%@ sampler): %.2f s -> %@", task.rawValue, results.shape[0],
                    weights.rawValue, model.step, plans.map(\.label).joined(separator: ", ").lowercased(), model.defaultSampler.rawValue,
                    Clock.seconds() - t0, out))
    }

    /// A plan per step count, or per --sigmas list.
    private func editPlans(_ model: TrainedModel) throws -> [SamplingPlan] {
        guard let sigmas else {
            let counts: [Int] = try parseList(steps ?? "1,2", option: "--steps")
            guard [.inpaint, .superres, .colorize].contains(task) else { return counts.map { SamplingPlan(kind: model.defaultSampler, steps: $0) } }
            let start = startSigma ?? EditTask.defaultStartSigma
            return counts.map { SamplingPlan(kind: model.defaultSampler, steps: 0, sigmas: EditTask.levels(steps: $0, startingAt: start)) }
        }
        let plans = try sigmas.split(separator: ";").map { SamplingPlan(kind: model.defaultSampler, steps: 0, sigmas: try parseList(String($0), option: "--sigmas")) }
        for plan in plans {
            do { try plan.validate() } catch let e as SamplingError { throw CLIError("--sigmas \(plan.sigmas!.map { String($0) }.joined(separator: ",")): \(e)") }
        }
        return plans
    }

    /// One row per step count, --count points from seed A to seed B.
    private func interpolation(_ model: TrainedModel, _ plans: [SamplingPlan]) throws -> ([(label: String, image: Bitmap)], Tensor) {
        let pair = try seedPair(seeds!), points = count ?? 8
        let rows = try plans.map { try model.interpolate($0, seeds: pair, count: points) }
        let panels = zip(plans, rows).map { (label: "\($0.label), SEED \(pair.0) TO \(pair.1)", image: ImageGrid.bitmap($1, columns: points)) }
        return (panels, Tensor.concatenate(rows, axis: 0))
    }

    /// A row per input: the input, what is known of it, then the variations at each step count.
    private func editing(_ model: TrainedModel, _ plans: [SamplingPlan]) throws -> ([(label: String, image: Bitmap)], Tensor) {
        let inputs = try SampleFiles.images(image!, channels: model.outputShape[0])
        let perInput = variations ?? 4
        try refuseAbsurdSize(count: inputs.shape[0] * perInput * plans.count, sampleShape: model.outputShape, what: "--image with --variations")
        let editTask: EditTask
        switch task {
        case .inpaint: editTask = .inpaint(mask: try SampleFiles.mask(mask!))
        case .superres: editTask = .superResolution(factor: factor!)
        case .colorize: editTask = .colorize
        case .denoise: editTask = .denoise(sigma: sigma!)
        case .interpolate: preconditionFailure("interpolate is not an edit")
        }
        let truth = try reference.map { try SampleFiles.images($0, channels: model.outputShape[0]) }
        if let truth { try editTask.check(reference: truth, inputCount: inputs.shape[0], sampleShape: model.outputShape) }
        // The training mean fills the start's unknown part and is inpainting's baseline; read once, only when needed.
        var isInpaint = false
        if case .inpaint = editTask { isInpaint = true }
        let usesPrior = prior == .mean && [.inpaint, .superres, .colorize].contains(task)
        let mean = usesPrior || (truth != nil && isInpaint) ? trainingMean(model) : nil
        let results = try plans.map {
            try model.edit(inputs, task: editTask, plan: $0, variations: perInput, seed: seed, prior: usesPrior ? mean : nil)
        }
        if let truth {
            let scores = try results.map { try editTask.score($0, variations: perInput, inputs: inputs, reference: truth, trainingMean: mean) }
            try report(scores, plans: plans, task: editTask, inputs: inputs.shape[0], variations: perInput)
        }
        var panels = [(label: "INPUT", image: ImageGrid.bitmap(inputs, columns: 1))]
        if let known = try editTask.degraded(inputs, sampleShape: model.outputShape) {
            let label = ["inpaint": "KNOWN", "superres": "BLOCK MEANS", "colorize": "LUMINANCE"][task.rawValue]!
            panels.append((label, ImageGrid.bitmap(known, columns: 1)))
        }
        panels += zip(plans, results).map { (label: $0.label, image: ImageGrid.bitmap($1, columns: perInput)) }
        return (panels, Tensor.concatenate(results, axis: 0))
    }

    /// Beside --out: OUT-errors.csv (OUT without its extension).
    private var errorsPath: String {
        let url = URL(fileURLWithPath: out)
        return url.deletingPathExtension().path + "-errors.csv"
    }

    /// The mean image of the checkpoint's training data (Fashion-MNIST: the train split), for inpainting's baseline;
    /// nil with a note when the data cannot be had.
    private func trainingMean(_ model: TrainedModel) -> Tensor? {
        do {
            guard let images = try DataSpec(parsing: model.config.data).trainingImages(seed: model.config.seed) else { return nil }
            let mean = EditScore.meanImage(images)
            if mean.shape == model.outputShape { return mean }
            note("no training mean (start fill, baseline): the data \(model.config.data) has images \(mean.shape), the model \(model.outputShape)")
        } catch {
            note("no training mean (the start's unknown part stays zero; no baseline): the checkpoint's data \(model.config.data) "
                 + "could not be read: \(error)")
        }
        return nil
    }

    /// Prints the errors and writes them to OUT-errors.csv.
    private func report(_ scores: [EditScore], plans: [SamplingPlan], task: EditTask, inputs: Int, variations: Int) throws {
        let per = scores.first?.scoredElements ?? 0
        print("mean squared error against --reference, [-1, 1] units, over \(task.scoredRegion) (\(per) values per image), "
              + "\(inputs) input\(inputs == 1 ? "" : "s") x \(variations) variation\(variations == 1 ? "" : "s"):")
        var csv = "task,steps,region,values_per_image,mse,variation_mean_mse,baseline,baseline_mse\n"
        func text(_ x: Double?) -> String { x.map { String(format: "%.6f", $0) } ?? "" }
        for (plan, score) in zip(plans, scores) {
            let mean = score.variationMeanMSE.map { "  (mean of the \(variations) variations \(text($0)))" } ?? ""
            print("  \(plan.label.lowercased()): \(text(score.mse))\(mean)   \(task.baselineName) \(score.baselineMSE == nil ? "n/a" : text(score.baselineMSE))")
            let fields = [self.task.rawValue, "\(plan.steps)", task.scoredRegion, "\(score.scoredElements)", text(score.mse),
                          text(score.variationMeanMSE), task.baselineName, text(score.baselineMSE)]
            csv += fields.joined(separator: ",") + "\n"
        }
        try csv.write(toFile: errorsPath, atomically: true, encoding: .utf8)
        print("wrote \(errorsPath)")
    }

    /// The library's errors with the option to change.
    private func explainingEditErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as EditError {
            switch error {
            case .imageShape: throw CLIError("--image \(image ?? ""): \(error)")
            case .referenceShape, .referenceCount: throw CLIError("--reference \(reference ?? ""): \(error)")
            case .nothingToScore: throw CLIError("--mask \(mask ?? ""): \(error)")
            case .maskShape, .maskNotBinary: throw CLIError("--mask \(mask ?? ""): \(error)")
            case .factorDoesNotDivide: throw CLIError("--factor \(factor ?? 0): \(error)")
            case .needsColor, .needsImages: throw CLIError("--task \(task.rawValue): \(error)")
            case .latentModel, .notConsistencyModel: throw CLIError("--checkpoint \(checkpoint): \(error)")
            default: throw CLIError("\(error)")
            }
        } catch SamplingError.outOfRange(let s, let low, let high) where task == .denoise {
            throw CLIError("--sigma \(s) is outside the model's noise range (\(low), \(high)]: give the inputs' noise level within it")
        } catch let error as SamplingError {
            throw CLIError("\(error)")
        }
    }
}
