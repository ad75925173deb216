// Which sampler to run on a trained model, and how many network evaluations it costs: the one place
// `sample` and `compare` turn a step count into samples for every training method. Which samplers a
// method allows is the method's (`TrainingMethod.samplers`).
import CKTensor
import CKNN

public enum SamplerKind: String, CaseIterable, Sendable {
    /// Consistency-model multistep sampling over a sigma list (iCT).
    case consistency
    /// EDM's Heun ODE solver (EDM teachers; CTM networks as denoisers g(x, t, t)).
    case heun
    /// CTM's gamma-sampling.
    case ctm
}

public struct SamplingPlan: Sendable, Equatable {
    public var kind: SamplerKind
    public var steps: Int
    /// Consistency sampling: explicit levels (default: `defaultSigmas(steps:)`); CTM: explicit jump times
    /// (default: a Karras grid of steps + 1 points).
    public var sigmas: [Float]? = nil
    /// CTM only.
    public var gamma: Float = 0
    /// CTM only: the points N of the grid the model was trained on. With it (and no explicit times), M <= N - 1
    /// jumps start at evenly spaced indices of that grid, times the network has seen; otherwise (or for
    /// M > N - 1) the times are a Karras grid of M + 1 points, as sony/ctm samples.
    public var trainingGridPoints: Int? = nil
    /// Consistency sampling: the scalings of the model's consistency function.
    public var boundary = ConsistencyBoundary.sigmaMin

    public init(kind: SamplerKind, steps: Int, sigmas: [Float]? = nil, gamma: Float = 0) {
        self.kind = kind
        self.steps = sigmas?.count ?? steps
        self.sigmas = sigmas
        self.gamma = gamma
    }

    /// Network evaluations per sample: Heun's last step is Euler's, so 2 * steps - 1.
    public var functionEvaluations: Int { kind == .heun ? 2 * steps - 1 : steps }

    public var levels: [Float] { sigmas ?? defaultSigmas(steps: steps) }

    /// Checks the plan before any work: a clear error for an unusable step list or gamma.
    public func validate() throws {
        guard steps >= 1 else { throw SamplingError.emptySigmas }
        if kind == .consistency || (kind == .ctm && sigmas != nil) { try validateSigmas(levels) }
        if kind == .ctm, !(0...1).contains(gamma) { throw SamplingError.badGamma(gamma) }
    }

    /// Jump times on the training grid: indices round(m (N - 1) / M), m = 0 .. M - 1, of the descending grid.
    public var gridTimes: [Float]? {
        guard kind == .ctm, let n = trainingGridPoints, steps <= n - 1 else { return nil }
        var config = CTMConfig()
        config.gridPoints = n
        let grid = config.grid
        return (0..<steps).map { m in grid[Int((Double(m) * Double(n - 1) / Double(steps)).rounded(.toNearestOrEven))] }
    }

    /// A short label for tables and pictures, e.g. "4 STEPS", "CTM G=0.5 4 STEPS", "HEUN 5 STEPS (9 NFE)".
    public var label: String {
        let base = "\(steps) STEP" + (steps == 1 ? "" : "S")
        switch kind {
        case .consistency: return base
        case .ctm: return "CTM G=\(gammaText) " + base
        case .heun: return "HEUN \(base) (\(functionEvaluations) NFE)"
        }
    }

    /// A file-name fragment: "4step", "ctm-g0.5-4step", "heun-5step".
    public var slug: String {
        switch kind {
        case .consistency: return "\(steps)step"
        case .ctm: return "ctm-g\(gammaText)-\(steps)step" + (sigmas == nil ? "" : "-given")
        case .heun: return "heun-\(steps)step"
        }
    }

    /// The sampler without its step count: "consistency", "heun", "ctm gamma=0.5".
    public var family: String {
        kind == .ctm ? "ctm gamma=\(gammaText)" + (sigmas == nil ? "" : " (given times)") : kind.rawValue
    }

    var gammaText: String { gamma == gamma.rounded() ? String(Int(gamma)) : String(gamma) }

    /// CTM: the jump times t_0 > ... > t_M = sigma_min (given times, the training grid's, or a Karras grid).
    func ctmTimes(sigmaMin: Float) throws -> [Float] {
        try ctmLevels(steps: steps, gamma: gamma, times: sigmas ?? gridTimes, sigmaMin: sigmaMin)
    }

    /// Samples of the network itself (latents for a latent method).
    public func sample(network: some Backbone, count: Int, seed: UInt64) throws -> Tensor {
        try validate()
        guard count > 0 else { throw SamplingError.badCount(count) }
        let p = Preconditioning()
        let ctmTimes = kind == .ctm ? try ctmTimes(sigmaMin: p.sigmaMin) : []
        return sampleInBatches(shape: network.sampleShape, count: count, seed: seed, batchSize: 256) { noise in
            chain(network: network, noise: &noise, ctmTimes: ctmTimes, preconditioning: p)
        }
    }

    /// One batch of the plan's sampler, every draw from `noise`: what `sample` computes for a batch (interpolation
    /// feeds it other noise). `ctmTimes`: `ctmTimes(sigmaMin:)`, for CTM.
    func chain(network: some Backbone, noise: inout some NoiseSource, ctmTimes: [Float], preconditioning p: Preconditioning) -> Tensor {
        switch kind {
        case .consistency:
            return consistencyChain(start: noise() * levels[0], sigmas: levels, sigmaMin: p.sigmaMin, noise: &noise,
                                    f: p.consistencyFunction(network, boundary: boundary))
        case .heun:
            let levels = heunLevels(steps: steps, sigmaMin: p.sigmaMin)
            return heunSolve(noise() * levels[0], levels: levels) { p.edmDenoiser(network, $0, sigma: $1) }
        case .ctm:
            return ctmChain(network: network, start: noise() * ctmTimes[0], levels: ctmTimes, gamma: gamma, noise: &noise, preconditioning: p)
        }
    }

    /// The plan with what the method's context fixes: CTM's training grid, the consistency function's scalings.
    func adapted(to context: SamplingContext) -> SamplingPlan {
        var plan = self
        if plan.trainingGridPoints == nil { plan.trainingGridPoints = context.trainingGridPoints }
        plan.boundary = context.boundary
        return plan
    }

    /// Samples as data: the method's context supplies CTM's training grid and decodes latents.
    public func sample(network: some Backbone, count: Int, seed: UInt64, context: SamplingContext) throws -> Tensor {
        try decodedAndChecked(adapted(to: context).sample(network: network, count: count, seed: seed), context: context)
    }

    /// Latents decoded to images; NaN or infinite values (diverged weights) are an error.
    func decodedAndChecked(_ samples: Tensor, context: SamplingContext) throws -> Tensor {
        let decoded = context.latentSpace?.decode(samples) ?? samples
        let bad = decoded.storage.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        guard bad == 0 else { throw SamplingError.nonFiniteSamples(count: bad, total: decoded.count) }
        return decoded
    }
}

extension SamplingPlan {
    /// What a training run's preview pictures show: one step of the method's sampler; Heun with 18 steps.
    public static func preview(_ method: any TrainingMethod.Type) -> SamplingPlan {
        let kind = method.defaultSampler
        return SamplingPlan(kind: kind, steps: kind == .heun ? 18 : 1)
    }

    /// What `--eval-every` measures: one and two steps; Heun with 18 steps (35 evaluations).
    public static func evaluation(_ method: any TrainingMethod.Type) -> [SamplingPlan] {
        let kind = method.defaultSampler
        return kind == .heun ? [SamplingPlan(kind: .heun, steps: 18)] : [1, 2].map { SamplingPlan(kind: kind, steps: $0) }
    }
}
