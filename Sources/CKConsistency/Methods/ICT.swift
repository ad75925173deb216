// Improved Consistency Training (Song & Dhariwal, ICLR 2024): consistency training from scratch with the
// pseudo-Huber metric, the discretization curriculum and lognormal pair sampling (algorithms.md 1).
import CKTensor
import CKNN

public struct ICTLossResult {
    public let loss: Tensor              // scalar, on the graph
    public let pointCount: Int           // N(k) used
}

/// iCT loss at iteration `step` (algorithms.md 1.8): one z per sample shared by student (sigma_{i+1},
/// with gradient) and teacher (sigma_i, the same network under stop-gradient); lambda = 1/(sigma_{i+1} - sigma_i).
/// `noise` may be given (immiscible assignment reorders it); otherwise it is drawn here.
public func ictLoss(network: some Backbone, batch x: Tensor, step: Int, config: ICTConfig, tables: SigmaPairTables,
                    noise: Tensor? = nil, shard: Shard? = nil, rng: inout some RandomNumberGenerator) -> ICTLossResult {
    let pair = consistencyPair(network: network, batch: x, step: step, config: config, tables: tables, noise: noise, shard: shard, rng: &rng)
    let c = config.huberC ?? ictHuberC(sampleSize: x.count / x.shape[0])
    let loss = pair.shard.mean(pseudoHuber(pair.student - pair.teacher, c: c) * pair.lambdas)
    return ICTLossResult(loss: loss, pointCount: pair.table.sigmas.count)
}

public final class ICT: TrainingMethod {
    public static let name = MethodName.ict
    public static let summary = "improved consistency training from scratch (Song & Dhariwal 2024)"
    public static let samplers: [SamplerKind] = [.consistency]

    public let options = NoOptions()
    let tables = SigmaPairTables()

    public init(config: TrainingConfig, network: any Backbone, inputs: MethodInputs) throws {}
    public init(config: TrainingConfig, network: any Backbone, checkpoint: Checkpoint, path: String) throws {}

    public func step(network: any Backbone, batch: Tensor, noise: Tensor?, iteration: Int, config: TrainingConfig,
                     shard: Shard, collective: any Collective, rng: inout SplitMix64) throws -> MethodStep {
        let curriculum = ICTConfig(totalSteps: config.iterations, s0: config.s0, s1: config.s1)
        let result = ictLoss(network: network, batch: batch, step: iteration, config: curriculum, tables: tables, noise: noise,
                             shard: shard, rng: &rng)
        return .loss(result.loss, StepReport(loss: result.loss.scalar, pointCount: result.pointCount))
    }
}
