// cmkit latent-stats: how heavy-tailed an autoencoder's normalised latents are (walkthrough 03).
import ArgumentParser
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKImageIO

struct LatentStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latent-stats",
        abstract: "Tail statistics and a histogram of an autoencoder's normalised latents over a data set.",
        discussion: "Encodes the training images, normalises the latents with the stored statistics and reports, in "
            + "units of each element's std: excess kurtosis, the share beyond 5 std and the largest value, overall "
            + "and per channel; writes a histogram (log density) beside a standard normal's.")

    @Option(help: "Autoencoder checkpoint (written by `cmkit train-autoencoder`).") var autoencoder: String
    @Option(help: "Images to encode: fashion-mnist | shapes | folder:PATH.") var data = "fashion-mnist"
    @Option(help: "Output PNG for the histogram.") var out: String
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        threading.apply()
        let space = try LatentSpace.load(from: try Checkpoint.read(from: URL(fileURLWithPath: autoencoder)), path: autoencoder)
        guard let images = try DataSpec(parsing: data).trainingImages() else { throw CLIError("--data \(data) has no images") }
        let latents = try space.encode(images)
        let (all, channels) = latentTails(latents)
        var table = "| latents | values | excess kurtosis | share beyond 5 std | max abs (std) |\n|---|---:|---:|---:|---:|\n"
        func row(_ name: String, _ t: TailStatistics) -> String {
            String(format: "| %@ | %d | %.3f | %.2e | %.2f |\n", name, t.count, t.excessKurtosis, t.beyondFive, t.maxAbs)
        }
        table += row("all", all)
        for (k, t) in channels.enumerated() { table += row("channel \(k)", t) }
        table += "| a standard normal (theory) | | 0 | 5.73e-07 | |\n"
        print(table, terminator: "")
        let values = latents.storage.map { Double($0) / 0.5 }
        let h = densityHistogram(values, limit: 8, bins: 80)
        let gauss = h.centers.map { exp(-$0 * $0 / 2) / (2 * Double.pi).squareRoot() }
        let plot = Plot.lines([PlotSeries(name: "latents", x: h.centers, y: h.density.map { max($0, 1e-7) }),
                               PlotSeries(name: "standard normal", x: h.centers, y: gauss.map { max($0, 1e-7) })],
                              title: "NORMALISED LATENTS", xLabel: "value / std", yLabel: "density", logY: true)
        try PNG.write(plot, to: out)
        note("encoded \(images.shape[0]) images to \(space.autoencoder.latentShape) latents; histogram -> \(out)")
    }
}
