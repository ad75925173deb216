// Which sampler `sample` and `compare` run for a checkpoint, and the metric's errors in the CLI's words.
import Foundation
import CKConsistency
import CKDatasets
import CKEvaluation

/// "consistency for ict, ... , ctm or heun for ctm": what each method's models can be sampled with.
let samplersHelp = MethodName.allCases.map { m in
    "\(m.type.samplers.map(\.rawValue).joined(separator: " or ")) for \(m.rawValue)"
}.joined(separator: ", ")

/// The requested sampler, or the model's default; one the model's method does not allow is refused.
func sampler(_ requested: SamplerKind?, for model: TrainedModel) throws -> SamplerKind {
    let kind = requested ?? model.defaultSampler
    guard model.method.samplers.contains(kind) else {
        throw CLIError("--method \(kind.rawValue) cannot sample a model trained with --method \(model.config.method.rawValue); use "
                       + model.method.samplers.map(\.rawValue).joined(separator: " or "))
    }
    return kind
}

/// A missing classifier is explained with the command that makes one.
func explainingMetricErrors<T>(for spec: DataSpec, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as EvaluationError {
        switch error {
        case .noClassifier(let dataset, _):
            let trainable = ClassifierData(rawValue: dataset) != nil
            throw CLIError("\(error); " + (trainable
                ? "train one with `cmkit train-classifier --data \(dataset) --out assets/\(classifierAssetName(for: dataset))`, "
                  + "or pass --classifier FILE"
                : "pass --classifier FILE (a classifier trained on images of this data set)"))
        case .notEnoughReferenceSamples:
            throw CLIError("\(error); lower --metric-count")
        default:
            throw error
        }
    }
}
