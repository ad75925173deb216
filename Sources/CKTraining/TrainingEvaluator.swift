// Periodic quality measurement during training: samples from the EMA weights (one and two steps; Heun
// with 18 steps for an EDM model) scored with the data set's metric and appended to RUN/eval.csv
// (iteration, training seconds, steps, metric columns).
import Foundation
import CKTensor
import CKConsistency
import CKDatasets
import CKEvaluation

public struct TrainingEvaluator {
    public let metric: QualityMetric
    public let url: URL
    public let count: Int

    /// 2048 points or 512 images per evaluation; a fresh or restarted log gets its header.
    public init(trainer: Trainer, file: URL) throws {
        count = trainer.config.sampleKind == .points ? 2048 : 512
        metric = try QualityMetric.make(for: try DataSpec(parsing: trainer.config.data), referenceCount: count)
        url = file
        if trainer.step == 0 || !FileManager.default.fileExists(atPath: url.path) {
            try ("iteration,seconds,steps," + metric.columns.joined(separator: ",") + "\n").write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// Samples and scores the EMA weights; `elapsed` is the training time so far (evaluation excluded).
    public func evaluate(_ trainer: Trainer, elapsed: Double) throws {
        var lines = ""
        for (plan, scores) in try scores(trainer) {
            lines += "\(trainer.step),\(String(format: "%.3f", elapsed)),\(plan.steps)," + scores.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n"
        }
        try LogFile(appendingTo: url).append(lines)
    }

    /// The metric of each evaluation plan on samples of the EMA weights.
    func scores(_ trainer: Trainer) throws -> [(SamplingPlan, [Double])] {
        try SamplingPlan.evaluation(trainer.config.method.type).map { plan in
            let samples = try trainer.withEMAWeights {
                try plan.sample(network: trainer.network, count: count, seed: 0xE7A1, context: trainer.samplingContext)
            }
            return (plan, try metric.evaluate(samples))
        }
    }
}
