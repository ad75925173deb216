// cmkit compare: several step counts side by side: a grid per count, a metrics table (Markdown, CSV), a plot.
import ArgumentParser
import Foundation
import CKTensor
import CKConsistency
import CKDatasets
import CKImageIO

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample one checkpoint at several step counts and compare quality and time.",
        discussion: """
            Writes into --out: grid-<n>step.png per step count (the same seeds, so the same noise lands in the \
            same tile), compare.png (the grids side by side), metrics.md and metrics.csv, and metric.png. \
            Quality: for 2-D data sliced Wasserstein-2 and MMD^2 against fresh true samples; for images the \
            Frechet distance on features of a classifier trained by `cmkit train-classifier`.
            """)

    @Option(help: "Checkpoint written by `cmkit train`.") var checkpoint: String
    @Option(help: "Step counts to compare, e.g. 1,2,4,8.") var steps = "1,2,4"
    @Option(help: "Explicit noise-level lists instead of --steps, separated by ';', e.g. '80;80,0.8;80,2,0.8,0.2'.")
    var sigmaLists: String?
    @Option(help: "Tiles per grid.") var count = 64
    @Option(help: "Samples for the metric (default 4096 for 2-D data, 1024 for images).") var metricCount: Int?
    @Option(help: "Sampling seed.") var seed: UInt64 = 0
    @Option(help: "Weights to sample with: ema | online.") var weights: WeightChoice = .ema
    @Option(help: "Classifier checkpoint for the image metric (default: the shipped one for the data set).")
    var classifier: String?
    @Option(help: "Output folder.") var out: String
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1.") }
        if let metricCount, metricCount < 2 { throw ValidationError("--metric-count must be at least 2.") }
    }

    func run() throws {
        threading.apply()
        let model = try loadTrainedModel(from: URL(fileURLWithPath: checkpoint), weights: weights)
        let lists = try stepLists()
        let spec = try DataSpec(parsing: model.config.data)
        let isPoints = model.config.sampleShape == [2]
        let n = metricCount ?? (isPoints ? 4096 : 1024)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let metric = try QualityMetric.make(for: spec, isPoints: isPoints, classifierPath: classifier, referenceCount: n)
        note("comparing \(lists.count) step lists on \(n) samples each; metric: \(metric.name)")

        var rows: [CompareRow] = []
        var panels: [(label: String, image: Bitmap)] = []
        for sigmas in lists {
            let label = "\(sigmas.count) STEP" + (sigmas.count == 1 ? "" : "S")
            let t0 = Clock.seconds()
            let samples = try sampleConsistency(network: model.network, count: n, sigmas: sigmas, seed: seed &+ 1)
            let seconds = Clock.seconds() - t0
            let scores = metric.evaluate(samples)
            let grid: Bitmap
            if isPoints {
                grid = Plot.scatter(samples, title: label)
            } else {
                // The grid's tiles are the first `count` metric samples: the same seeds at every step count.
                grid = ImageGrid.bitmap(samples.slice(0..<min(count, n)), columns: 8)
            }
            try PNG.write(grid, to: "\(out)/grid-\(sigmas.count)step.png")
            panels.append((label, grid))
            rows.append(CompareRow(sigmas: sigmas, msPerSample: 1000 * seconds / Double(n), scores: scores))
            note("\(label): " + zip(metric.columns, scores).map { String(format: "%@ %.5g", $0, $1) }.joined(separator: ", ")
                 + String(format: ", %.3f ms per sample", 1000 * seconds / Double(n)))
        }
        try PNG.write(ImageGrid.sideBySide(panels, scale: isPoints ? 1 : 2), to: "\(out)/compare.png")
        try writeTables(rows, metric: metric, model: model, samples: n)
        let series = metric.columns.enumerated().map { k, name in
            PlotSeries(name: name, x: rows.map { Double($0.sigmas.count) }, y: rows.map { $0.scores[k] })
        }
        try PNG.write(Plot.lines(series, title: "QUALITY VS STEPS", xLabel: "steps", yLabel: metric.name), to: "\(out)/metric.png")
        print(try String(contentsOfFile: "\(out)/metrics.md", encoding: .utf8))
    }

    private func stepLists() throws -> [[Float]] {
        let lists: [[Float]]
        if let sigmaLists {
            lists = try sigmaLists.split(separator: ";").map { try parseList(String($0), option: "--sigma-lists") }
        } else {
            let counts: [Int] = try parseList(steps, option: "--steps")
            guard counts.allSatisfy({ $0 >= 1 }) else { throw CLIError("--steps '\(steps)': every step count must be at least 1") }
            lists = counts.map { defaultSigmas(steps: $0) }
        }
        for l in lists {
            do { try validateSigmas(l) } catch let e as SamplingError { throw CLIError("step list \(l): \(e)") }
        }
        return lists
    }

    private func writeTables(_ rows: [CompareRow], metric: QualityMetric, model: TrainedModel, samples: Int) throws {
        var md = "Checkpoint `\(checkpoint)` (\(model.config.model) on \(model.config.data), iteration \(model.step), \(weights.rawValue) weights).\n"
        md += "Metric: \(metric.name) on \(samples) samples (lower is better). Time: wall-clock sampling time per sample, \(Parallel.threadCount) threads.\n\n"
        md += "| steps | sigmas | ms per sample | " + metric.columns.joined(separator: " | ") + " |\n"
        md += "|---:|---|---:|" + String(repeating: "---:|", count: metric.columns.count) + "\n"
        var csv = "steps,sigmas,ms_per_sample," + metric.columns.joined(separator: ",") + "\n"
        for r in rows {
            let s = r.sigmas.map { String($0) }.joined(separator: " ")
            md += "| \(r.sigmas.count) | \(s) | " + String(format: "%.3f", r.msPerSample) + " | "
                + r.scores.map { String(format: "%.5g", $0) }.joined(separator: " | ") + " |\n"
            csv += "\(r.sigmas.count),\(s)," + String(format: "%.4f", r.msPerSample) + ","
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
    let sigmas: [Float]
    let msPerSample: Double
    let scores: [Double]
}
