// The files of a training run in one folder: checkpoint, CSV log, evaluation log, previews, loss plot.
import Foundation

public struct RunDirectory: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }
    public init(path: String) { url = URL(fileURLWithPath: path) }

    public var checkpoint: URL { url.appendingPathComponent("checkpoint.safetensors") }
    /// iteration,loss,N,seconds per iteration.
    public var log: URL { url.appendingPathComponent("train.log") }
    /// iteration,seconds,steps,metric columns per evaluation.
    public var evaluationLog: URL { url.appendingPathComponent("eval.csv") }
    public var lossPlot: URL { url.appendingPathComponent("loss.png") }
    public func preview(step: Int) -> URL { url.appendingPathComponent("samples-\(step).png") }

    public var path: String { url.path }

    public func create() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
}
