// Rebuilding a trained network from a training checkpoint, with its EMA or online weights, and sampling it.
import Foundation
import CKTensor
import CKNN

public enum WeightChoice: String, CaseIterable, Sendable {
    case ema, online
}

public struct TrainedModel {
    public let config: TrainingConfig
    public let network: any Backbone
    public let weights: WeightChoice
    public let step: Int
    /// What the method adds for sampling: latent methods' autoencoder, CTM's training grid.
    public let context: SamplingContext
    /// The file it was read from, for messages.
    public let source: String?

    public init(config: TrainingConfig, network: any Backbone, weights: WeightChoice, step: Int, context: SamplingContext,
                source: String? = nil) {
        self.config = config
        self.network = network
        self.weights = weights
        self.step = step
        self.context = context
        self.source = source
    }

    public var method: any TrainingMethod.Type { config.method.type }
    public var latentSpace: LatentSpace? { context.latentSpace }

    /// The sampler `sample` and `compare` use unless told otherwise.
    public var defaultSampler: SamplerKind { method.defaultSampler }

    /// Samples from `plan`, as images (latents decoded) or points.
    public func sample(_ plan: SamplingPlan, count: Int, seed: UInt64) throws -> Tensor {
        try plan.sample(network: network, count: count, seed: seed, context: context)
    }

    /// The shape of what `sample` returns.
    public var outputShape: [Int] { latentSpace?.autoencoder.imageShape ?? config.sampleShape }

    /// Points or images.
    public var sampleKind: SampleKind { SampleKind(sampleShape: outputShape) }
}

/// Reads `url`, rebuilds the network its config names, and loads the chosen weights
/// (EMA weights are stored as `ema.<name>`). Errors name the file and the problem.
public func loadTrainedModel(from url: URL, weights: WeightChoice = .ema) throws -> TrainedModel {
    let checkpoint = try Checkpoint.read(from: url)
    let config = try TrainingConfig.stored(in: checkpoint, path: url.path)
    try Trainer.check(config)
    let network = config.makeNetwork()
    try checkpoint.load(into: network.parameters, prefix: weights == .ema ? "ema." : "", model: config.model.rawValue)
    let context = try config.method.type.samplingContext(config: config, checkpoint: checkpoint, path: url.path)
    let step = (try? checkpoint.intMetadata("step")) ?? 0
    guard (0...config.iterations).contains(step) else {
        throw TrainingError.invalidSetting(field: "step", value: String(step), requirement: "must be from 0 to the run's \(config.iterations) iterations")
    }
    return TrainedModel(config: config, network: network, weights: weights, step: step,
                        context: context, source: url.path)
}
