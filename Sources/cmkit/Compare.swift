// cmkit compare: several step counts side by side: a grid per count, a metrics table (Markdown, CSV), a plot.
import ArgumentParser
import Foundation
import CKTensor
import CKConsistency
import CKDatasets
import CKImageIO
import CKEvaluation

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample one checkpoint at several step counts and compare quality and time.",
        discussion: """
            The sampler follows the checkpoint's method (\(samplersHelp); --method overrides); CTM sweeps --gammas too. \
            Writes into --out: grid-<n>step.png per step count (grid-ctm-g<G>-<n>step.png, grid-heun-<n>step.png) (the same seeds, so the same noise lands in the \
            same tile), compare.png (the grids side by side), metrics.md and metrics.csv, and metric.png. \
            Quality: for 2-D data sliced Wasserstein-2 and MMD^2 against fresh true samples; for images the \
            Frechet distance on features of a classifier trained by `cmkit train-classifier`.
            """)

    @Option(help: "Checkpoint written by `cmkit train`.") var checkpoint: String
    @Option(help: "Step counts to compare, e.g. 1,2,4,8 (Heun: steps, each 2 steps - 1 evaluations).") var steps = "1,2,4"
    @Option(help: "Sampler: consistency | heun | ctm (default: the one for the checkpoint's method).") var method: SamplerKind?
    @Option(help: "CTM: gammas to sweep, e.g. 0,0.5,1.") var gammas = "0"
    @Option(help: "Explicit noise-level lists instead of --steps, separated by ';', e.g. '80;80,0.8;80,2,0.8,0.2' (CTM: the jump times; the last jump lands on sigma_min).")
    var sigmaLists: String?
    @Option(parsing: .unconditional, help: "Tiles per grid.") var count = 64
    @Option(parsing: .unconditional, help: "Samples for the metric (default 4096 for 2-D data, 1024 for images).") var metricCount: Int?
    @Option(parsing: .unconditional, help: "Sampling seed.") var seed: UInt64 = 0
    @Option(help: "Weights to sample with: ema | online.") var weights: WeightChoice = .ema
    @Option(help: "Classifier checkpoint for the image metric (default: the shipped one for the data set).")
    var classifier: String?
    @Option(help: "Output folder.") var out: String
    @OptionGroup var classes: ClassOptions
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1.") }
        if let metricCount, metricCount < 2 { throw ValidationError("--metric-count must be at least 2.") }
    }

    func run() throws {
        threading.apply()
        let model = try loadTrainedModel(from: URL(fileURLWithPath: checkpoint), weights: weights)
        try refuseAbsurdSize(count: max(count, metricCount ?? 0), sampleShape: model.outputShape, what: "--metric-count")
        let plans = try samplingPlans(for: model).map { plan -> SamplingPlan in
            var plan = plan
            plan.trainingGridPoints = model.context.trainingGridPoints
            return plan
        }
        let spec = try DataSpec(parsing: model.config.data)
        let isPoints = model.sampleKind == .points
        let n = metricCount ?? (isPoints ? 4096 : 1024)
        let choice = try classes.choice(for: model)
        var oneClass: Int? = nil
        if case .one(let label, _)? = choice { oneClass = label }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let metric = try explainingMetricErrors(for: spec) {
            try QualityMetric.make(for: spec, classifier: classifier.map { URL(fileURLWithPath: $0) }, referenceCount: n,
                                   classes: model.classNames != nil, label: oneClass)
        }
        // Class-conditional samples: sample k is of class k mod K (all) or of the one class; the classifier says how often it agrees.
        let labels = choice?.labels(count: n)
        let measuresClasses = labels != nil && metric.classifier?.classes == choice?.names.count
        let columns = metric.columns + (measuresClasses ? ["class_accuracy"] : [])
        note("comparing \(plans.count) samplers on \(n) samples each" + (choice.map { " of \($0.description)" } ?? "")
             + "; metric: \(metric.name)" + (measuresClasses ? ", and how often the classifier agrees with the asked-for class" : ""))
        if labels != nil && !measuresClasses {
            note("no class accuracy: the metric's classifier does not know this model's \(choice!.names.count) classes")
        }

        var rows: [CompareRow] = []
        var panels: [(label: String, image: Bitmap)] = []
        for plan in plans {
            let label = plan.label
            let t0 = Clock.seconds()
            let samples: Tensor
            do {
                samples = try labels.map { try model.sample(plan, labels: $0, seed: seed &+ 1, guidance: classes.guidance ?? 1) }
                    ?? model.sample(plan, count: n, seed: seed &+ 1)
            } catch let e as ClassError { throw CLIError("\(e)") }
            let seconds = Clock.seconds() - t0
            var scores = try metric.evaluate(samples)
            if measuresClasses, let labels, let accuracy = metric.classAccuracy(samples, labels: labels, classCount: choice!.names.count) {
                scores.append(accuracy)
            }
            let grid: Bitmap
            if isPoints {
                grid = Plot.scatter(samples, title: label)
            } else {
                // The grid's tiles are the first `count` metric samples: the same seeds at every step count.
                grid = ImageGrid.bitmap(samples.slice(0..<min(count, n)), columns: 8)
            }
            try PNG.write(grid, to: "\(out)/grid-\(plan.slug).png")
            panels.append((label, grid))
            rows.append(CompareRow(plan: plan, msPerSample: 1000 * seconds / Double(n), scores: scores))
            note("\(label): " + zip(columns, scores).map { String(format: "%@ %.5g", $0, $1) }.joined(separator: ", ")
                 + String(format: ", %.3f ms per sample", 1000 * seconds / Double(n)))
        }
        try PNG.write(ImageGrid.sideBySide(panels, scale: isPoints ? 1 : 2), to: "\(out)/compare.png")
        try writeTables(rows, metric: metric, columns: columns, model: model, samples: n, choice: choice)
        // The metric's full name is in metrics.md; the axis carries its column names.
        try PNG.write(Plot.lines(metricSeries(rows, metric: metric), title: "QUALITY VS NFE (\(samplesText(n)) SAMPLES)",
                                 xLabel: "network evaluations", yLabel: metric.columns.joined(separator: " / ") + " (lower is better)"),
                      to: "\(out)/metric.png")
        print(try String(contentsOfFile: "\(out)/metrics.md", encoding: .utf8))
    }

    /// One line per metric column and sampler family (CTM gamma, Heun, consistency), against network evaluations.
    private func metricSeries(_ rows: [CompareRow], metric: QualityMetric) -> [PlotSeries] {
        let families = Dictionary(grouping: rows, by: { $0.plan.family }).sorted { $0.key < $1.key }
        var series: [PlotSeries] = []
        for (k, name) in metric.columns.enumerated() {
            for (family, group) in families {
                let x = group.map { Double($0.plan.functionEvaluations) }, y = group.map { $0.scores[k] }
                series.append(PlotSeries(name: families.count == 1 ? name : "\(name) \(family)", x: x, y: y))
            }
        }
        return series
    }

    private func samplingPlans(for model: TrainedModel) throws -> [SamplingPlan] {
        let kind = try sampler(method, for: model)
        let plans: [SamplingPlan]
        if let sigmaLists {
            guard kind != .heun else { throw CLIError("--sigma-lists gives consistency levels or CTM jump times; Heun takes --steps") }
            let lists: [[Float]] = try sigmaLists.split(separator: ";").map { try parseList(String($0), option: "--sigma-lists") }
            let gammaValues: [Float] = kind == .ctm ? try parseList(gammas, option: "--gammas") : [0]
            plans = gammaValues.flatMap { g in lists.map { SamplingPlan(kind: kind, steps: 0, sigmas: $0, gamma: g) } }
        } else {
            let counts: [Int] = try parseList(steps, option: "--steps")
            guard counts.allSatisfy({ $0 >= 1 }) else { throw CLIError("--steps '\(steps)': every step count must be at least 1") }
            let gammaValues: [Float] = kind == .ctm ? try parseList(gammas, option: "--gammas") : [0]
            plans = gammaValues.flatMap { g in counts.map { SamplingPlan(kind: kind, steps: $0, gamma: g) } }
        }
        for plan in plans {
            do { try plan.validate() } catch let e as SamplingError { throw CLIError("\(plan.label.lowercased()): \(e)") }
        }
        return plans
    }

    private func writeTables(_ rows: [CompareRow], metric: QualityMetric, columns: [String], model: TrainedModel, samples: Int,
                             choice: ClassChoice?) throws {
        var md = "Checkpoint `\(checkpoint)` (\(model.config.model.rawValue) on \(model.config.data), iteration \(model.step), \(weights.rawValue) weights).\n"
        md += "Metric: \(metric.name) on \(samples) samples (lower is better). Time: wall-clock sampling time per sample, \(Parallel.threadCount) threads.\n"
        if let choice {
            md += "Samples of \(choice.description)" + (classes.guidance.map { ", guidance w = \(formatted($0))" } ?? "")
                + (columns.contains("class_accuracy") ? "; class_accuracy: how often the classifier names the asked-for class (higher is better)" : "") + ".\n"
        }
        md += "\n| sampler | steps | NFE | sigmas (CTM: jump times) | ms per sample | " + columns.joined(separator: " | ") + " |\n"
        md += "|---|---:|---:|---|---:|" + String(repeating: "---:|", count: columns.count) + "\n"
        var csv = "sampler,steps,nfe,sigmas,ms_per_sample," + columns.joined(separator: ",") + "\n"
        for r in rows {
            let times = r.plan.kind == .consistency ? r.plan.levels : r.plan.kind == .ctm ? (r.plan.sigmas ?? r.plan.gridTimes ?? []) : []
            let s = times.map { String(format: "%.4g", $0) }.joined(separator: " ")
            let head = "\(r.plan.family),\(r.plan.steps),\(r.plan.functionEvaluations),\(s),"
            md += "| \(r.plan.family) | \(r.plan.steps) | \(r.plan.functionEvaluations) | \(s) | " + String(format: "%.3f", r.msPerSample) + " | "
                + r.scores.map { String(format: "%.5g", $0) }.joined(separator: " | ") + " |\n"
            csv += head + String(format: "%.4f", r.msPerSample) + ","
                + r.scores.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n"
        }
        if let floor = metric.floor {
            md += "\nNoise floor (true vs true samples of the same size): "
                + zip(metric.columns, floor).map { String(format: "%@ %.5g", $0, $1) }.joined(separator: ", ") + "\n"
        }
        try md.write(toFile: "\(out)/metrics.md", atomically: true, encoding: .utf8)
        try csv.write(toFile: "\(out)/metrics.csv", atomically: true, encoding: .utf8)
    }
}

struct CompareRow {
    let plan: SamplingPlan
    let msPerSample: Double
    let scores: [Double]
}

private func samplesText(_ n: Int) -> String { "\(n)" }
