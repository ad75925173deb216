// cmkit sample: one-step or multistep consistency sampling from a checkpoint to a PNG grid (and raw files).
import ArgumentParser
import Foundation
import CKTensor
import CKConsistency
import CKImageIO
import CKTraining

extension WeightChoice: ExpressibleByArgument {}
extension SamplerKind: ExpressibleByArgument {}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample from a trained checkpoint in one or a few steps and write a PNG.",
        discussion: "Images go to a grid (rows of --columns, 2-pixel padding); 2-D models write a scatter plot and, "
            + "with --csv, the points. --sigmas overrides the noise levels that --steps picks (consistency sampling). "
            + "The sampler follows the checkpoint's training method: " + samplersHelp + ". Heun takes 2 steps - 1 network evaluations.")

    @Option(help: "Sampler: consistency | heun | ctm (default: the one for the checkpoint's method).") var method: SamplerKind?
    @Option(parsing: .unconditional, help: "CTM gamma in [0, 1]: 0 deterministic long jumps, 1 consistency-style re-noising.") var gamma: Float = 0

    @Option(help: "Checkpoint written by `cmkit train`.") var checkpoint: String
    @Option(parsing: .unconditional, help: "Number of sampling steps (network evaluations).") var steps = 1
    @Option(help: "Explicit decreasing noise levels, e.g. 80,0.8 (the first is the first jump).") var sigmas: String?
    @Option(parsing: .unconditional, help: "Number of samples (default 64; with --class all, --columns per class).") var count: Int?
    @Option(parsing: .unconditional, help: "Sampling seed: sample k is the same for any --count.") var seed: UInt64 = 0
    @Option(help: "Weights to sample with: ema | online.") var weights: WeightChoice = .ema
    @Option(help: "Output PNG.") var out: String
    @Option(parsing: .unconditional, help: "Grid columns.") var columns = 8
    @Option(help: "Also write the raw samples as float32 .npy (N, C, H, W) or (N, 2).") var npy: String?
    @Option(help: "Also write 2-D samples as CSV lines x,y.") var csv: String?
    @OptionGroup var classes: ClassOptions
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        if classes.className?.lowercased() == "all" && count != nil {
            throw ValidationError("--class all draws one row of --columns samples per class; set --columns instead of --count.")
        }
        let count = self.count ?? 64
        if count < 1 { throw ValidationError("--count must be at least 1.") }
        if count > 1 << 24 { throw ValidationError("--count \(count) is more than the 16777216 samples one call makes; sample in parts with --seed.") }
        if steps < 1 { throw ValidationError("--steps must be at least 1.") }
        if columns < 1 { throw ValidationError("--columns must be at least 1.") }
    }

    func run() throws {
        threading.apply()
        try refuseOverwritingInputs(outputs: [("--out", out), ("--npy", npy), ("--csv", csv)], inputs: [("--checkpoint", checkpoint)])
        let model = try loadTrainedModel(from: URL(fileURLWithPath: checkpoint), weights: weights)
        let choice = try classes.choice(for: model)
        if choice == nil, let names = model.classNames {
            // Only the labels dropped in training taught the no-class mode (walkthrough 05: FD 135.6 against 51.8).
            note("--class none: these are the no-class samples of a class-conditional model (\(names.count) classes), "
                 + "weaker than its class samples; without --class it draws every class in turn")
        }
        let labels: [Int]?
        switch choice {
        case nil: labels = nil
        case .one?, .inTurn?: labels = choice!.labels(count: count ?? 64)
        case .all(let names)?: labels = names.indices.flatMap { Array(repeating: $0, count: columns) }
        }
        let count = labels?.count ?? self.count ?? 64
        try refuseAbsurdSize(count: count, sampleShape: model.outputShape, what: "--count")
        let kind = try sampler(method, for: model)
        if sigmas != nil && kind != .consistency { throw CLIError("--sigmas is for consistency sampling; use --steps with --method \(kind.rawValue)") }
        let plan = SamplingPlan(kind: kind, steps: steps, sigmas: try sigmas.map { try parseList($0, option: "--sigmas") }, gamma: gamma)
        do { try plan.validate() } catch let e as SamplingError { throw CLIError("\(e)") }
        let t0 = Clock.seconds()
        let samples: Tensor
        do {
            samples = try labels.map { try model.sample(plan, labels: $0, seed: seed, guidance: classes.guidance ?? 1) }
                ?? model.sample(plan, count: count, seed: seed)
        } catch let e as ClassError { throw CLIError("\(e)") }
        let seconds = Clock.seconds() - t0
        let title = plan.label + (choice.map { " " + $0.title } ?? "") + (classes.guidance.map { " W=\(formatted($0))" } ?? "")
        if case .all(let names)? = choice {
            try PNG.write(ImageGrid.labelledRows(samples, labels: names, columns: columns), to: out)
        } else {
            try SamplePicture.write(samples, to: out, columns: columns, title: title)
        }
        if let npy { try NPY.write(samples, to: npy) }
        if let csv {
            guard model.sampleKind == .points else { throw CLIError("--csv is for point models; this model makes \(model.outputShape)") }
            try writePointsCSV(samples, to: csv)
        }
        let what = kind == .consistency ? "sigmas " + plan.levels.map { String($0) }.joined(separator: ",") : plan.label.lowercased()
        let of = choice.map { ", " + $0.description } ?? ""
        note(String(format: "%d samples%@, %@, %@ weights at iteration %d: %.3f s (%.2f ms per sample) -> %@",
                    count, of, what, weights.rawValue, model.step,
                    seconds, 1000 * seconds / Double(count), out))
    }
}
