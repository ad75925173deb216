// cmkit plot-eval: training curves of several runs from their eval.csv, against iterations or wall time.
import ArgumentParser
import Foundation
import CKImageIO

struct PlotEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot-eval",
        abstract: "Plot the quality metric logged by `cmkit train --eval-every` for one or more runs.",
        discussion: "Reads RUN/eval.csv of each run (iteration, seconds, steps, metric columns) and draws one line "
            + "per run for the chosen step count, against iterations or training seconds.")

    @Argument(help: "Run folders, each with an eval.csv.") var runs: [String]
    @Option(parsing: .unconditional, help: "Sampling steps whose rows to plot (eval.csv logs 1 and 2).") var steps = 1
    @Option(help: "Metric column (default: the first after 'steps').") var metric: String?
    @Option(help: "Horizontal axis: iteration | seconds.") var x = "iteration"
    @Option(help: "Plot title.") var title: String?
    @Option(help: "Output PNG.") var out: String

    func validate() throws {
        if runs.isEmpty { throw ValidationError("give at least one run folder.") }
        if !["iteration", "seconds"].contains(x) { throw ValidationError("--x must be iteration or seconds.") }
    }

    func run() throws {
        var series: [PlotSeries] = []
        var metricName = metric
        for run in runs {
            let (path, lines) = try readCSV(folder: run, file: "eval.csv", hint: "train with --eval-every N to log the metric")
            guard let header = lines.first, header.count > 3, header[0] == "iteration", header[2] == "steps" else {
                throw CLIError("\(path) is not an eval.csv written by `cmkit train --eval-every`")
            }
            let name = metricName ?? header[3]
            metricName = name
            guard let column = header.firstIndex(of: name) else {
                throw CLIError("\(path) has no column '\(name)'; it has \(header.dropFirst(3).joined(separator: ", "))")
            }
            let xColumn = x == "iteration" ? 0 : 1
            let rows = lines.dropFirst().filter { $0.count == header.count && Int($0[2]) == steps }
            guard !rows.isEmpty else { throw CLIError("\(path) has no rows for --steps \(steps)") }
            series.append(PlotSeries(name: URL(fileURLWithPath: run).lastPathComponent,
                                     x: rows.compactMap { Double($0[xColumn]) }, y: rows.compactMap { Double($0[column]) }))
        }
        let label = x == "iteration" ? "iteration" : "training seconds"
        let plot = Plot.lines(series, title: title ?? "\(metricName!.uppercased()), \(steps) STEP" + (steps == 1 ? "" : "S"),
                              xLabel: label, yLabel: metricName!, logY: true)
        try PNG.write(plot, to: out)
        note("wrote \(out) (\(series.count) runs, \(series.map(\.x.count).reduce(0, +)) points)")
    }
}
