// cmkit bss: shows a batch before and after Batch Styles Standardization, side by side.
import ArgumentParser
import Foundation
import CKTensor
import CKConsistency
import CKDatasets
import CKImageIO

struct BSS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bss",
        abstract: "Show a batch before and after Batch Styles Standardization (FFT amplitude swap).",
        discussion: "Every image takes the low-frequency Fourier amplitude (ratio --ratio of the band) of one "
            + "reference image of the batch and keeps its own phase. The left grid is the batch, the right one "
            + "the result; the reference is the first tile.")

    @Option(help: "A folder of PNG images (same size and channels).") var `in`: String?
    @Option(help: "A data set instead of --in: fashion-mnist | shapes | folder:PATH.") var data: String?
    @Option(parsing: .unconditional, help: "Band ratio r in [0, 1]: the low-frequency square covers about r of the spectrum.") var ratio: Float = 0.1
    @Option(parsing: .unconditional, help: "Images in the batch.") var count = 16
    @Option(parsing: .unconditional, help: "Seed for picking the batch.") var seed: UInt64 = 0
    @Option(help: "Output PNG.") var out: String

    func validate() throws {
        if (`in` == nil) == (data == nil) { throw ValidationError("give exactly one of --in DIR or --data NAME.") }
        if !(ratio >= 0 && ratio <= 1) { throw ValidationError("--ratio must be in [0, 1].") }
        if count < 2 { throw ValidationError("--count must be at least 2 (a reference and an image).") }
        if count > 4096 { throw ValidationError("--count must be at most 4096 (the picture shows every image).") }
    }

    func run() throws {
        let spec = try `in`.map { DataSpec.folder($0) } ?? DataSpec(parsing: data!)
        if spec.isPointCloud { throw CLIError("BSS works on images; \(spec) is a 2-D point set") }
        var batcher = try StepBatcher(dataset: try spec.open(), batchSize: count, seed: seed)
        let batch = batcher.batch(forStep: 0)
        let t0 = Clock.seconds()
        let result = batchStyleStandardization(batch, ratio: ratio, reference: 0)
        let seconds = Clock.seconds() - t0
        let before = ImageGrid.bitmap(batch, columns: 8), after = ImageGrid.bitmap(result, columns: 8)
        try PNG.write(ImageGrid.sideBySide([("BEFORE", before), (String(format: "BSS R=%.2f", ratio), after)], scale: 2), to: out)
        note(String(format: "%d images %@, b = %d, %.2f ms -> %@", count, batch.shape.dropFirst().map(String.init).joined(separator: "x"),
                    bssHalfWidth(ratio: ratio, height: batch.shape[2], width: batch.shape[3]), 1000 * seconds, out))
    }
}
