// Easy Consistency Tuning ("Consistency Models Made Easy", Geng et al., ICLR 2025; algorithms.md 6): a
// trained EDM denoiser is a consistency model with Delta t = t; keep training the same network with the
// consistency loss while r(t) moves towards t stage by stage, so it becomes a consistency model without a
// separate teacher. Pairs (t, r) per sample (6.2), target sg f(x_r, r) with f(x, 0) = x, pseudo-Huber
// distance with the EDM weighting (6.3). The authors' code (locuslab/ect, training/loss.py) weights by
// 1/(t - r) instead [code != paper text]; both are options.
// Distilled tuning (an addition, not in the paper): the run keeps the EDM model it starts from as a frozen
// teacher and takes x_r one Euler step of the teacher's ODE away from x_t instead of on x_t's own noise
// line, which is consistency distillation (Song et al. 2023) from the model ECT starts at. With classes and
// a guidance weight w != 1 the teacher's ODE is the classifier-free guided one (as latent consistency models
// distill guidance, Luo et al. 2023), so one step samples what the teacher's guided sampler does, which
// sampling-time guidance of a consistency model cannot.
import Glibc
import CKTensor
import CKNN

/// How the per-sample consistency distance is weighted.
public enum ECTWeighting: String, ClosedChoice {
    /// w(t) = 1/t^2 + 1/sigma_data^2 (algorithms.md 6.3).
    case edm
    /// w(t, r) = 1/(t - r), as locuslab/ect's ECMLoss.
    case gap
}

/// The mapping from t to r (algorithms.md 6.2).
public enum ECTMapping: String, ClosedChoice {
    /// r = t (1 - q^-(stage+1) (1 + k sigmoid(-b t))), clamped at 0.
    case sigmoid
    /// r = t (1 - q^-(stage+1)).
    case constant
}

public struct ECTConfig: MethodOptions {
    /// r/t approaches 1 by this factor per stage.
    public var q = 4.0
    /// Delta t stages laid over the run (stage length = ceil(iterations / stages)); 1 keeps stage 0.
    public var stages = 4
    /// The share of the run in the last stage, the others splitting the rest equally (nil: all equally
    /// long). In short CPU runs one-step quality rose for about a hundred iterations after the switch to the
    /// smallest gaps and then fell, so a short last stage kept what the coarser gaps had reached (walkthrough 05).
    public var lastStageShare: Double? = nil
    public var mapping = ECTMapping.sigmoid
    public var k = 8.0, b = 1.0
    public var weighting = ECTWeighting.edm
    /// Pseudo-Huber c; 0 gives sqrt(d) (the paper's adaptive weighting with p = 0.5); nil: 0.00054 sqrt(dim).
    public var huberC: Float? = 0
    public var pMean = -1.1, pStd = 2.0
    /// x_r from the frozen start model's ODE instead of the noise line.
    public var distill = false
    /// The teacher's classifier-free guidance weight for class-conditional runs (w != 1 implies `distill`).
    public var guidance = 1.0

    public init() {}

    public func validate() throws {
        try require(q > 1 && q.isFinite, "ect.q", q, "must be a number above 1")
        try require((1...1000).contains(stages), "ect.stages", stages, "must be from 1 to 1000")
        if let lastStageShare {
            try require(lastStageShare > 0 && lastStageShare < 1, "ect.lastStageShare", lastStageShare, "must be between 0 and 1")
        }
        try require(k >= 0 && k.isFinite && b.isFinite, "ect.k", k, "and b must be finite, k >= 0")
        if let huberC { try require(huberC >= 0 && huberC.isFinite, "ect.huberC", huberC, "must be a number >= 0") }
        try require(pStd > 0 && pStd.isFinite && pMean.isFinite, "ect.pStd", pStd, "must be positive (and pMean finite)")
        try require(guidance >= 0 && guidance.isFinite, "ect.guidance", guidance, "must be a finite number of at least 0")
    }

    /// Tuning follows a frozen teacher's ODE instead of the data's noise lines.
    public var usesTeacher: Bool { distill || guidance != 1 }

    /// The stage of iteration `step` in a run of `iterations`: a function of the iteration, so it survives resume.
    public func stage(step: Int, iterations: Int) -> Int {
        guard let lastStageShare, stages > 1 else { return Self.stage(step: step, iterations: iterations, stages: stages) }
        let lastStart = iterations - max(1, Int((Double(iterations) * lastStageShare).rounded()))
        return step >= lastStart ? stages - 1 : Self.stage(step: step, iterations: max(1, lastStart), stages: stages - 1)
    }

    /// Equal stages: length ceil(iterations / stages), the last one taking the remainder.
    private static func stage(step: Int, iterations: Int, stages: Int) -> Int {
        let length = max(1, (iterations + stages - 1) / max(1, stages))
        return min(step / length, max(0, stages - 1))
    }

    /// r for t at `stage` (algorithms.md 6.2), in Double, clamped at 0.
    public func r(t: Double, stage: Int) -> Double {
        let decay = pow(q, -Double(stage + 1))
        let adjust = mapping == .sigmoid ? 1 + k / (1 + exp(b * t)) : 1      // k sigmoid(-b t)
        return max(0, t * (1 - decay * adjust))
    }
}

/// w(t) = (t^2 + sigma_data^2) / (t sigma_data)^2 = 1/t^2 + 1/sigma_data^2.
public func ectWeight(t: Double, sigmaData: Double = 0.5) -> Double { 1 / (t * t) + 1 / (sigmaData * sigmaData) }

public struct ECTLossResult {
    public let loss: Tensor
    public let stage: Int
}

/// ECT loss (algorithms.md 6.3): t lognormal per sample (clamped to [sigma_min, sigma_max], the sampler's
/// range), r from the stage's mapping, one epsilon shared by x_t and x_r, target sg f(x_r, r) (x where
/// r = 0), mean over the batch of w * (sqrt(d + c^2) - c), d the sample's sum of squared differences.
/// With a teacher denoiser D(x, sigma per row) (distilled or guided tuning), x_r = x_t + (r - t) (x_t - D(x_t, t)) / t
/// instead, which is D(x_t, t) itself where r = 0.
public func ectLoss(network: some Backbone, batch: Tensor, step: Int, iterations: Int, config: ECTConfig,
                    noise: Tensor? = nil, shard: Shard? = nil, teacher: ((Tensor, [Float]) -> Tensor)? = nil,
                    rng: inout some RandomNumberGenerator,
                    preconditioning p: Preconditioning = Preconditioning()) -> ECTLossResult {
    let shard = shard ?? .whole(batch.shape[0])
    let stage = config.stage(step: step, iterations: iterations)
    let allT = (0..<batch.shape[0]).map { _ in min(max(exp(config.pMean + config.pStd * rng.normalDouble()), Double(p.sigmaMin)), 80) }
    let allNoise = noise ?? Tensor.normal(like: batch, rng: &rng)
    let x = shard.rows(batch), z = shard.rows(allNoise), tDouble = shard.values(allT), n = x.shape[0]
    let rDouble = tDouble.map { config.r(t: $0, stage: stage) }
    let t = tDouble.map(Float.init), r = rDouble.map(Float.init)
    let xt = addNoise(x, z, sigma: t)
    // Samples with r = 0 are evaluated at a placeholder level, then masked: f(x, 0) = x gives the data
    // itself there, or with a teacher its denoised x_t (where its Euler step to 0 lands).
    let safe = r.map { $0 > 0 ? $0 : 1 }
    let (xr, atZero) = Tape.withoutRecording { () -> (Tensor, Tensor) in
        guard let teacher else { return (addNoise(x, z, sigma: safe), x) }
        let atZero = teacher(xt, t)
        return (xt - (xt - atZero) * perSample(zip(t, r).map { t, r in (t - r) / t }, rank: x.rank), atZero)
    }
    let student: Tensor, target: Tensor
    if !r.contains(where: { $0 > 0 }) {
        (student, target) = (p.edmDenoiser(network, xt, sigma: t), atZero)
    } else {
        // As in consistencyPair: one stacked batch, students first, where the network takes it.
        let f: Tensor
        if ConsistencyPair.stacks(network) {
            let both = p.edmDenoiser(network.forStackedRows(), Tensor.concatenate([xt, xr], axis: 0), sigma: t + safe)
            (student, f) = (both.leadingRows(n), both.detachedRows(n..<2 * n))
        } else {
            student = p.edmDenoiser(network, xt, sigma: t)
            f = Tape.withoutRecording { p.edmDenoiser(network, xr, sigma: safe) }
        }
        let mask = perSample(r.map { $0 > 0 ? 1 : 0 }, rank: x.rank)
        target = f * mask + atZero * (1 - mask)
    }
    let c = config.huberC ?? ictHuberC(sampleSize: x.count / n)
    let weights = zip(tDouble, rDouble).map { t, r in
        Float(config.weighting == .edm ? ectWeight(t: t, sigmaData: Double(p.sigmaData)) : 1 / max(t - r, 1e-12))
    }
    let loss = shard.mean(pseudoHuber(student - target, c: c) * Tensor(shape: [n], storage: weights))
    return ECTLossResult(loss: loss, stage: stage)
}

public final class ECT: TrainingMethod {
    public static let name = MethodName.ect
    public static let summary = "Easy Consistency Tuning of a trained EDM model into a consistency model (Geng et al. 2025)"
    public static let samplers: [SamplerKind] = [.consistency]
    public static let inputs: [MethodInput] = [.diffusionModel]

    public let options: ECTConfig
    public private(set) var setupSummary: String?
    /// The frozen EDM model a distilling run follows (nil unless `options.usesTeacher`).
    public let teacher: (any Backbone)?

    /// The network starts as the EDM model's weights (its EMA weights when loaded from a checkpoint).
    public init(config: TrainingConfig, network: any Backbone, inputs: MethodInputs) throws {
        guard let start = inputs.diffusionModel else { throw TrainingError.missingInput(method: .ect, input: .diffusionModel) }
        let source = start.source ?? "the diffusion model"
        options = config.options(as: ECTConfig.self)
        try ECT.requireClassesForGuidance(options, config: config)
        try start.requireDiffusionModel(for: config, source: source)
        let copied = copyMatchingValues(from: start.network, to: network)
        teacher = options.usesTeacher ? ECT.frozen(start.network) : nil
        let following = options.guidance != 1 ? "guided sampler, w = \(options.guidance)" : "ODE"
        setupSummary = "ECT starts from \(source) at iteration \(start.step) (\(copied) of \(network.parameters.count) tensors)"
            + (options.usesTeacher ? "; it distills that model's \(following)" : "")
    }

    /// A distilling run finds its teacher's weights in the checkpoint (`teacher.*`), so it resumes without the --init file.
    public init(config: TrainingConfig, network: any Backbone, checkpoint: Checkpoint, path: String) throws {
        options = config.options(as: ECTConfig.self)
        try ECT.requireClassesForGuidance(options, config: config)
        guard options.usesTeacher else { teacher = nil; return }
        let teacher = ECT.frozen(config.makeDiffusionNetwork())
        try checkpoint.load(into: teacher.parameters, prefix: "teacher.")
        self.teacher = teacher
    }

    private static func frozen(_ network: any Backbone) -> any Backbone {
        for p in network.parameters { p.freeze() }
        return network
    }

    private static func requireClassesForGuidance(_ options: ECTConfig, config: TrainingConfig) throws {
        guard options.guidance != 1, config.classNames == nil else { return }
        throw TrainingError.invalidSetting(field: "ect.guidance", value: "\(options.guidance)",
                                           requirement: "needs a class-conditional run (--classes): guidance mixes the class and no-class outputs")
    }

    public func save(into checkpoint: inout Checkpoint) {
        guard let teacher else { return }
        checkpoint.append(teacher.parameters.map { (join("teacher", $0.name), $0.value) })
    }

    public static func samplingContext(config: TrainingConfig, checkpoint: Checkpoint, path: String) throws -> SamplingContext {
        SamplingContext(boundary: .edm)
    }

    public var samplingContext: SamplingContext { SamplingContext(boundary: .edm) }

    public func step(network: any Backbone, batch: Tensor, noise: Tensor?, iteration: Int, config: TrainingConfig,
                     shard: Shard, collective: any Collective, rng: inout SplitMix64) throws -> MethodStep {
        // The teacher sees the student's rows' labels (dropped ones as no class, where guidance leaves it unguided).
        let guided = teacher.map { teacher -> (Tensor, [Float]) -> Tensor in
            var bound = teacher
            if let student = network as? LabelledNetwork {
                bound = LabelledNetwork(teacher, labels: student.labels, guidance: Float(options.guidance))
            }
            return { Preconditioning().edmDenoiser(bound, $0, sigma: $1) }
        }
        let result = ectLoss(network: network, batch: batch, step: iteration, iterations: config.iterations, config: options,
                             noise: noise, shard: shard, teacher: guided, rng: &rng)
        return .loss(result.loss, StepReport(loss: result.loss.scalar, details: ["stage": Float(result.stage)]))
    }
}
