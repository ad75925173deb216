// cmkit score: any tool's samples against a data set's held-out split, with the metric `compare` prints.
import ArgumentParser
import Foundation
import CKTensor
import CKDatasets
import CKEvaluation

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score samples made by any tool against a data set, with exactly the metric `cmkit compare` reports.",
        discussion: """
            SAMPLES is an .npy array ((N, C, H, W), (N, H, W) for gray images or (N, 2) for points; float values \
            in [-1, 1], or uint8 pixels 0-255), a PNG grid as `cmkit sample` and the PyTorch port write (tiles of the \
            data's image size with even padding), a folder of PNG images, or a CSV of x,y points. Images: the \
            Frechet distance on the data set's classifier features against as many held-out images as there are \
            samples (compare's --metric-count); points: sliced W2 and MMD^2 against fresh true points. Lower is better.
            """)

    @Argument(help: "Samples: FILE.npy | GRID.png | FOLDER | POINTS.csv.") var samples: String
    @Option(help: "The data set the samples imitate: \(DataSpec.help).") var data: String
    @Option(parsing: .unconditional, help: "Reference samples (default: as many as the samples given).") var referenceCount: Int?
    @Option(help: "Classifier checkpoint for the image metric (default: the shipped one for the data set).") var classifier: String?
    @Flag(help: "Print one JSON line instead of a sentence.") var json = false
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        if let referenceCount, referenceCount < 2 { throw ValidationError("--reference-count must be at least 2.") }
    }

    func run() throws {
        threading.apply()
        let spec = try DataSpec(parsing: data)
        let sampleShape = try spec.open().sampleShape
        let values = try SampleFiles.read(samples, sampleShape: sampleShape)
        let n = referenceCount ?? values.shape[0]
        let metric = try explainingMetricErrors(for: spec) {
            try QualityMetric.make(for: spec, classifier: classifier.map { URL(fileURLWithPath: $0) }, referenceCount: n)
        }
        let scores = try metric.evaluate(values)
        if json {
            let fields = zip(metric.columns, scores).map { "\"\($0)\": \($1)" } + ["\"samples\": \(values.shape[0])", "\"reference\": \(n)"]
                + (metric.floor.map { zip(metric.columns, $0).map { "\"\($0)_floor\": \($1)" } } ?? [])
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            let text = zip(metric.columns, scores).map { String(format: "%@ %.5g", $0, $1) }.joined(separator: ", ")
            let floor = metric.floor.map { " (noise floor: " + zip(metric.columns, $0).map { String(format: "%@ %.5g", $0, $1) }.joined(separator: ", ") + ")" } ?? ""
            print("\(samples): \(text)\(floor); \(values.shape[0]) samples, \(metric.name)")
        }
    }
}
