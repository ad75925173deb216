// Loads a checkpoint written by `cmkit train`, samples 16 items in one step of the model's own sampler
// (EMA weights), and writes them as a PNG: a grid for images, a scatter plot for points.
import Foundation
import CKConsistency
import CKImageIO

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: sample-from-checkpoint CHECKPOINT.safetensors OUT.png\n".utf8))
    exit(2)
}
do {
    let model = try loadTrainedModel(from: URL(fileURLWithPath: arguments[1]), weights: .ema)
    let plan = SamplingPlan(kind: model.defaultSampler, steps: 1)
    let samples = try model.sample(plan, count: 16, seed: 0)
    try SamplePicture.write(samples, to: arguments[2], columns: 4)
    print("\(samples.shape[0]) samples of \(model.config.model.rawValue) (\(model.config.method.rawValue), iteration \(model.step)) -> \(arguments[2])")
} catch {
    FileHandle.standardError.write(Data("sample-from-checkpoint: \(error)\n".utf8))
    exit(1)
}
