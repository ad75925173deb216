// Rebuilding a trained network from a `cmkit train` checkpoint, with its EMA or online weights.
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
    /// Latent CT: the autoencoder that turns the network's latents into images.
    public let latentSpace: LatentSpace?

    /// Samples from `plan`, as images (latents decoded) or points.
    public func sample(_ plan: SamplingPlan, count: Int, seed: UInt64) throws -> Tensor {
        var plan = plan
        if plan.trainingGridPoints == nil { plan.trainingGridPoints = config.ctm?.gridPoints }
        let samples = try plan.sample(network: network, count: count, seed: seed)
        return latentSpace?.decode(samples) ?? samples
    }

    /// The shape of what `sample` returns.
    public var outputShape: [Int] { latentSpace?.autoencoder.imageShape ?? config.sampleShape }
}

/// Reads `url`, rebuilds the network its config names, and loads the chosen weights
/// (EMA weights are stored as `ema.<name>`). Errors name the file and the problem.
public func loadTrainedModel(from url: URL, weights: WeightChoice = .ema) throws -> TrainedModel {
    let checkpoint = try Checkpoint.read(from: url)
    guard let json = checkpoint.metadata["config"],
          let config = try? JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8)) else {
        throw TrainingError.incompatibleCheckpoint(
            "checkpoint \(url.path): no training config in its metadata; pass a checkpoint written by `cmkit train`")
    }
    let network: any Backbone
    do { network = try config.makeNetwork() } catch let error as TrainingError {
        throw TrainingError.incompatibleCheckpoint("checkpoint \(url.path): \(error)")
    }
    try checkpoint.load(into: network.parameters, prefix: weights == .ema ? "ema." : "", model: config.model)
    let latentSpace = config.method == "lct" ? try LatentSpace.load(from: checkpoint, prefix: "autoencoder.", path: url.path) : nil
    return TrainedModel(config: config, network: network, weights: weights, step: (try? checkpoint.intMetadata("step")) ?? 0,
                        latentSpace: latentSpace)
}
