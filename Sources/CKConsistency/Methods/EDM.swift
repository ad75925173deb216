// An EDM denoiser trained here (Karras et al. 2022): lognormal sigma, EDM weighting; sampled with Heun.
// The teacher CTM distils (algorithms.md 3.6).
import Glibc
import CKTensor
import CKNN

/// EDM training defaults: ln sigma ~ N(pMean, pStd^2).
public struct EDMConfig: Sendable {
    public var pMean = -1.2, pStd = 1.2
    public var preconditioning = Preconditioning()
    public init() {}
}

/// EDM's training loss for a batch: lognormal sigma per sample, weighted denoising error.
/// `noise` may be given (immiscible assignment reorders it); otherwise it is drawn here.
public func edmLoss(network: some Backbone, batch x: Tensor, config: EDMConfig = EDMConfig(), noise: Tensor? = nil,
                    shard: Shard? = nil, rng: inout some RandomNumberGenerator) -> Tensor {
    let sigma = (0..<x.shape[0]).map { _ in Float(exp(config.pMean + config.pStd * rng.normalDouble())) }
    let z = noise ?? Tensor.normal(like: x, rng: &rng)
    let p = config.preconditioning
    return denoisingLoss({ p.edmDenoiser(network, $0, sigma: $1) }, batch: x, noise: z, sigma: sigma, shard: shard, preconditioning: p)
}

public final class EDM: TrainingMethod {
    public static let name = MethodName.edm
    public static let summary = "an EDM denoiser (Karras et al. 2022), sampled with Heun; the teacher CTM distils"
    public static let samplers: [SamplerKind] = [.heun]

    public let options = NoOptions()

    public init(config: TrainingConfig, network: any Backbone, inputs: MethodInputs) throws {}
    public init(config: TrainingConfig, network: any Backbone, checkpoint: Checkpoint, path: String) throws {}

    public func step(network: any Backbone, batch: Tensor, noise: Tensor?, iteration: Int, config: TrainingConfig,
                     shard: Shard, collective: any Collective, rng: inout SplitMix64) throws -> MethodStep {
        let loss = edmLoss(network: network, batch: batch, noise: noise, shard: shard, rng: &rng)
        return .loss(loss, StepReport(loss: loss.scalar))
    }
}
