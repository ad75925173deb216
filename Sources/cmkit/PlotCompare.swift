// cmkit plot-compare: quality against network evaluations for several `compare` outputs in one figure.
import ArgumentParser
import Foundation
import CKImageIO

struct PlotCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot-compare",
        abstract: "Plot the metric against network evaluations (NFE) from several `cmkit compare` folders.",
        discussion: "Reads DIR/metrics.csv of each folder and draws one line per folder and sampler (e.g. an iCT "
            + "model's consistency sampling, a CTM model at each gamma, an EDM model's Heun sampler). Lines are named "
            + "after the folder, or after the run for a folder called compare (RUN/compare).")

    @Argument(help: "Folders written by `cmkit compare`.") var folders: [String]
    @Option(help: "Metric column (default: the first metric).") var metric: String?
    @Option(help: "Plot title.") var title = "QUALITY VS NETWORK EVALUATIONS"
    @Option(help: "Output PNG.") var out: String

    func validate() throws {
        if folders.isEmpty { throw ValidationError("give at least one compare folder.") }
    }

    func run() throws {
        var series: [PlotSeries] = []
        var name = metric
        for folder in folders {
            let (path, rows) = try readCSV(folder: folder, file: "metrics.csv", hint: "run `cmkit compare --out \(folder)` first")
            guard let header = rows.first, let nfe = header.firstIndex(of: "nfe"), let family = header.firstIndex(of: "sampler"),
                  let firstMetric = header.firstIndex(of: "ms_per_sample").map({ $0 + 1 }), firstMetric < header.count else {
                throw CLIError("\(path) lacks the sampler/nfe columns; re-run `cmkit compare` with this version")
            }
            let column = name.flatMap { header.firstIndex(of: $0) } ?? firstMetric
            if let name, header.firstIndex(of: name) == nil {
                throw CLIError("\(path) has no column '\(name)'; it has \(header[firstMetric...].joined(separator: ", "))")
            }
            name = header[column]
            let data = rows.dropFirst().filter { $0.count == header.count }
            for sampler in data.map({ $0[family] }).uniqued() {
                let mine = data.filter { $0[family] == sampler }
                series.append(PlotSeries(name: "\(label(of: folder)): \(sampler)",
                                         x: mine.compactMap { Double($0[nfe]) }, y: mine.compactMap { Double($0[column]) }))
            }
        }
        try PNG.write(Plot.lines(series, title: title, xLabel: "network evaluations", yLabel: name ?? "", logY: true), to: out)
        note("wrote \(out) (\(series.count) lines)")
    }
}

/// A folder's name in the legend; `RUN/compare` (compare's usual output) is named after RUN, so that
/// several runs' `compare` folders get lines of their own names.
func label(of folder: String) -> String {
    let url = URL(fileURLWithPath: folder).standardizedFileURL
    let parent = url.deletingLastPathComponent().lastPathComponent
    return url.lastPathComponent == "compare" && !parent.isEmpty && parent != "/" ? parent : url.lastPathComponent
}

extension Array where Element: Hashable {
    /// The elements in order of first appearance, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
