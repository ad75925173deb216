// Latent consistency training with the iLCT changes (Dao et al., ICLR 2025): the Cauchy metric, the
// adaptive scaling-c schedule and the early-step diffusion loss (algorithms.md 2.1-2.3), on the normalised
// latents of a trained autoencoder. OT coupling is a batch transform (BatchPreparation); Non-scaling
// LayerNorm is the network's (latent-net).
import Glibc
import CKTensor
import CKNN

/// The consistency metric of latent CT.
public enum LatentMetric: String, ClosedChoice {
    /// iLCT's Cauchy loss.
    case cauchy
    /// iCT's pseudo-Huber with c = 0.00054 sqrt(d), for the ablation.
    case huber
}

/// Each iLCT change is a switch, so an ablation is one flag away.
public struct LCTConfig: MethodOptions {
    public var metric = LatentMetric.cauchy
    /// c = exp(-1.15 ln(N - 1) - 0.85) after the first curriculum stage; off: 0.00054 sqrt(d) throughout.
    public var adaptiveC = true
    public var diffusionLoss = true
    public var diffusionWeight: Float = 5
    /// Samples whose descending student index is at least floor(fraction N) get the diffusion loss.
    public var diffusionFraction = 0.75
    /// Minibatch OT between latents and unit noise (squared L2, exact assignment) before noising.
    public var otCoupling = true

    public init() {}

    public func validate() throws {
        try require(diffusionWeight >= 0 && diffusionWeight.isFinite, "lct.diffusionWeight", diffusionWeight, "must be a number >= 0")
        try require((0...1).contains(diffusionFraction), "lct.diffusionFraction", diffusionFraction, "must be in [0, 1]")
    }
}

/// latent CT's c at N curriculum points: 0.00054 sqrt(d) in the first stage (N = s0 + 1), then
/// exp(-1.15 ln(N - 1) - 0.85), a fit to the shrinking spread of the residuals (algorithms.md 2.2).
public func lctScalingC(pointCount n: Int, firstStagePoints: Int, sampleSize d: Int) -> Float {
    n <= firstStagePoints ? ictHuberC(sampleSize: d) : Float(exp(-1.15 * log(Double(n - 1)) - 0.85))
}

/// Which samples of a batch get the diffusion loss: descending student index >= floor(fraction N),
/// i.e. the low-noise end of the grid ("early" in the generative direction's end near the data).
public func diffusionLossMask(studentIndices: [Int], pointCount n: Int, fraction: Double) -> [Bool] {
    let threshold = Int(floor(fraction * Double(n)))
    return studentIndices.map { n - 1 - $0 >= threshold }
}

public struct LCTLossResult {
    public let loss: Tensor
    public let pointCount: Int
    public let c: Float
    public let diffusionSamples: Int
}

/// mean_b lambda_b d(student_b, teacher_b) + w_diff L_diff, where L_diff averages
/// (1/sigma^2 + 1/sigma_data^2) mean_j (student_b - x_b)^2 over the selected low-noise samples only
/// (0 when none is selected) and reuses the student's forward pass.
public func lctLoss(network: some Backbone, batch: Tensor, step: Int, config: ICTConfig, lct: LCTConfig,
                    tables: SigmaPairTables, noise: Tensor? = nil, shard: Shard? = nil,
                    rng: inout some RandomNumberGenerator) -> LCTLossResult {
    let pair = consistencyPair(network: network, batch: batch, step: step, config: config, tables: tables, noise: noise, shard: shard, rng: &rng)
    let x = pair.shard.rows(batch)
    let n = x.shape[0], d = x.count / n, points = pair.table.sigmas.count
    let c: Float
    let distance: Tensor
    if lct.metric == .huber {
        c = config.huberC ?? ictHuberC(sampleSize: d)
        distance = pseudoHuber(pair.student - pair.teacher, c: c)
    } else {
        c = config.huberC ?? (lct.adaptiveC ? lctScalingC(pointCount: points, firstStagePoints: config.curriculum.s0 + 1, sampleSize: d)
                                             : ictHuberC(sampleSize: d))
        distance = cauchy(pair.student - pair.teacher, c: c)
    }
    var loss = pair.shard.mean(distance * pair.lambdas)
    var selectedCount = 0
    if lct.diffusionLoss {
        // The selected count is the whole batch's (every process knows all the draws); this shard adds its rows.
        selectedCount = diffusionLossMask(studentIndices: pair.allIndices.map { $0 + 1 }, pointCount: points,
                                          fraction: lct.diffusionFraction).filter { $0 }.count
        let mask = diffusionLossMask(studentIndices: pair.indices.map { $0 + 1 }, pointCount: points, fraction: lct.diffusionFraction)
        if selectedCount > 0 {
            let sd2 = config.preconditioning.sigmaData * config.preconditioning.sigmaData
            // Weight 0 for the unselected samples; the mean divides by the selected count, not the batch.
            let weights = zip(pair.studentSigmas, mask).map { s, on in on ? (1 / (s * s) + 1 / sd2) / Float(selectedCount) : 0 }
            let perSample = meanPerSample((pair.student - x).squared())
            loss = loss + (perSample * Tensor(shape: [n], storage: weights)).sum() * lct.diffusionWeight
        }
    }
    return LCTLossResult(loss: loss, pointCount: points, c: c, diffusionSamples: selectedCount)
}

public final class LatentCT: TrainingMethod {
    public static let name = MethodName.lct
    public static let summary = "latent consistency training with the iLCT changes (Dao et al. 2025) on a trained autoencoder's latents"
    public static let samplers: [SamplerKind] = [.consistency]
    public static let modelsLatents = true
    public static let inputs: [MethodInput] = [.autoencoder]
    /// The LCT code's curriculum end for latents.
    public static let defaultS1 = 640

    public let options: LCTConfig
    public let latentSpace: LatentSpace?
    let tables = SigmaPairTables()

    public convenience init(config: TrainingConfig, network: any Backbone, inputs: MethodInputs) throws {
        guard let space = inputs.autoencoder else { throw TrainingError.missingInput(method: .lct, input: .autoencoder) }
        try self.init(config: config, space: space)
    }

    /// The autoencoder and its statistics travel in the checkpoint under `autoencoder.`.
    public convenience init(config: TrainingConfig, network: any Backbone, checkpoint: Checkpoint, path: String) throws {
        try self.init(config: config, space: try LatentSpace.load(from: checkpoint, prefix: "autoencoder.", path: path))
    }

    init(config: TrainingConfig, space: LatentSpace) throws {
        guard space.autoencoder.latentShape == config.sampleShape else {
            throw TrainingError.modelCannotModel(model: config.model, sampleShape: space.autoencoder.latentShape)
        }
        options = config.options(as: LCTConfig.self)
        latentSpace = space
    }

    public static func samplingContext(config: TrainingConfig, checkpoint: Checkpoint, path: String) throws -> SamplingContext {
        SamplingContext(latentSpace: try LatentSpace.load(from: checkpoint, prefix: "autoencoder.", path: path))
    }

    public func step(network: any Backbone, batch: Tensor, noise: Tensor?, iteration: Int, config: TrainingConfig,
                     shard: Shard, collective: any Collective, rng: inout SplitMix64) throws -> MethodStep {
        let curriculum = ICTConfig(totalSteps: config.iterations, s0: config.s0, s1: config.s1)
        let result = lctLoss(network: network, batch: batch, step: iteration, config: curriculum, lct: options,
                             tables: tables, noise: noise, shard: shard, rng: &rng)
        return .loss(result.loss, StepReport(loss: result.loss.scalar, pointCount: result.pointCount,
                                             details: ["c": result.c, "diffusion_samples": Float(result.diffusionSamples)]))
    }

    public func save(into checkpoint: inout Checkpoint) { latentSpace?.append(to: &checkpoint, prefix: "autoencoder.") }

    public func batchTransforms(_ general: BatchTransforms) -> BatchTransforms {
        options.otCoupling ? .otCoupling(bssRatio: general.bssRatio) : general
    }
}
