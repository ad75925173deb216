// Consistency Trajectory Models (Kim et al., ICLR 2024), distilled from an EDM teacher: the (t, u, s)
// sampling, soft consistency matching + DSM with the adaptive weight, the teacher and target networks,
// and the method type. algorithms.md 3.2-3.5 and 3.8; the jump and gamma-sampling are CTMJump.swift.
import Glibc
import CKTensor
import CKNN

/// CTM defaults (algorithms.md 3.8), scaled for a CPU: the grid and schedules follow sony/ctm.
public struct CTMConfig: MethodOptions {
    /// Karras grid points N (descending index: 0 = sigma_max).
    public var gridPoints = 18
    /// EMA rate of the target network theta^- used for the outer jumps.
    public var targetEMADecay: Float = 0.999
    /// DSM weight: nil = adaptive (gradient-norm ratio at the output layer), else this constant.
    public var dsmWeight: Float? = nil
    /// Pseudo-Huber c for the distance; nil = 0.00054 sqrt(d) (the port's stand-in for LPIPS).
    public var huberC: Float? = nil
    /// How the batch's teacher length k is drawn. Uniform with the jump weighting squared trains the short
    /// jumps a long chain uses (toy set, notebooks-md/05: eight gamma = 0 steps 0.0296 sliced W2 instead of
    /// 0.0571, one and two steps unchanged, so eight steps are no worse than two).
    public var stepStrategy = CTMStepStrategy.uniform
    /// How each sample's consistency distance is weighted.
    public var weighting = CTMWeighting.jump
    /// The exponent of the jump weighting.
    public var weightingPower = 2.0

    public init() {}

    /// Checkpoints without these settings were trained with the weighted strategy and uniform weights.
    public static var storedDefaults: CTMConfig {
        var o = CTMConfig()
        o.stepStrategy = .weighted
        o.weighting = .uniform
        o.weightingPower = 1
        return o
    }

    public func validate() throws {
        try require((3...1000).contains(gridPoints), "ctm.gridPoints", gridPoints, "must be from 3 to 1000")
        try require(targetEMADecay >= 0 && targetEMADecay < 1, "ctm.targetEMADecay", targetEMADecay, "must be in [0, 1)")
        if let dsmWeight { try require(dsmWeight >= 0 && dsmWeight.isFinite, "ctm.dsmWeight", dsmWeight, "must be a number >= 0") }
        if let huberC { try require(huberC > 0 && huberC.isFinite, "ctm.huberC", huberC, "must be a positive number") }
        try require(weightingPower >= 0 && weightingPower <= 8, "ctm.weightingPower", weightingPower, "must be from 0 to 8")
    }

    /// Each sample's weight for a jump from t to s.
    public func weight(t: Float, s: Float) -> Float {
        weighting == .uniform ? 1 : Float(pow(1 / (1 - Double(s) / Double(t)), weightingPower))
    }

    /// The grid, descending: grid[0] = sigma_max, grid[N-1] = sigma_min.
    public var grid: [Float] { karrasSigmas(count: gridPoints).reversed().map { Float($0) } }
}

/// sony/ctm's `heun_step_strategy`.
public enum CTMStepStrategy: String, ClosedChoice {
    /// P(k) proportional to k: long teacher segments (the paper's default).
    case weighted
    /// k uniform in 1...N-1: short segments as often as long ones.
    case uniform
}

/// sony/ctm's `weight_schedule` for the consistency term.
public enum CTMWeighting: String, ClosedChoice {
    /// 1 for every sample (the paper's CTM + DSM command).
    case uniform
    /// 1/(1 - s/t)^power ("uniform_g"): a short jump moves x by only (1 - s/t) g, so its error is scaled up.
    case jump
}

/// P(k) proportional to k for k = 1..maxSteps (sony/ctm `heun_step_strategy='weighted'`).
public func heunStepDistribution(maxSteps: Int) -> [Double] {
    let total = Double(maxSteps * (maxSteps + 1) / 2)
    return (1...maxSteps).map { Double($0) / total }
}

/// The distribution of k for `strategy`.
public func heunStepDistribution(maxSteps: Int, strategy: CTMStepStrategy) -> [Double] {
    strategy == .weighted ? heunStepDistribution(maxSteps: maxSteps) : Array(repeating: 1 / Double(maxSteps), count: maxSteps)
}

/// One batch's times on the descending grid: a single teacher length k; per sample t = grid[n],
/// u = grid[n + k], s = grid[m] with m uniform in [n + k, N - 1] (so s <= u < t).
public struct CTMTimes: Equatable {
    public let k: Int
    public let tIndex: [Int], sIndex: [Int]

    public static func draw(batchSize: Int, gridPoints n: Int, strategy: CTMStepStrategy = .weighted,
                            rng: inout some RandomNumberGenerator) -> CTMTimes {
        let probabilities = heunStepDistribution(maxSteps: n - 1, strategy: strategy)
        var u = rng.uniformDouble(), k = probabilities.count
        for (i, p) in probabilities.enumerated() {
            if u < p { k = i + 1; break }
            u -= p
        }
        var tIndex: [Int] = [], sIndex: [Int] = []
        for _ in 0..<batchSize {
            let t = Int(rng.uniformDouble() * Double(n - k))          // 0 ... N-1-k
            let s = t + k + Int(rng.uniformDouble() * Double(n - t - k))  // t+k ... N-1
            tIndex.append(t); sIndex.append(s)
        }
        return CTMTimes(k: k, tIndex: tIndex, sIndex: sIndex)
    }
}

/// The networks one CTM step uses besides the student: the frozen teacher D_phi and the target
/// network theta^- (an EMA of the student, frozen; gradients still flow through its inputs).
public struct CTMNetworks {
    public let teacher: any Backbone
    public let target: any Backbone
    public init(teacher: any Backbone, target: any Backbone) { self.teacher = teacher; self.target = target }
}

public struct CTMLosses {
    public let consistency: Tensor      // L_CTM, on the graph
    public let denoising: Tensor        // L_DSM, on the graph
    public let times: CTMTimes
}

/// The two CTM losses for a batch (algorithms.md 3.3-3.4):
///   estimate = G_target(G_theta(x_t, t, s), s, sigma_min)         (gradient through both inputs)
///   target   = sg(G_target(G_theta(x_u, u, s), s, sigma_min)),  x_u = teacher Heun from t to u on the grid
///   L_CTM = mean_b pseudoHuber(estimate - target);  L_DSM = weighted denoising loss of g(x, sigma, sigma).
/// The draws are made for the whole batch; the losses are `shard`'s part of the batch means.
public func ctmLosses(student: some Backbone, networks: CTMNetworks, batch: Tensor, config: CTMConfig,
                      noise: Tensor? = nil, shard: Shard? = nil, rng: inout some RandomNumberGenerator,
                      preconditioning p: Preconditioning = Preconditioning()) -> CTMLosses {
    let shard = shard ?? .whole(batch.shape[0]), grid = config.grid
    let times = CTMTimes.draw(batchSize: batch.shape[0], gridPoints: config.gridPoints, strategy: config.stepStrategy, rng: &rng)
    let allNoise = noise ?? Tensor.normal(like: batch, rng: &rng)
    let x = shard.rows(batch), z = shard.rows(allNoise), n = x.shape[0]
    let tIndex = shard.values(times.tIndex), sIndex = shard.values(times.sIndex)
    let t = tIndex.map { grid[$0] }, s = sIndex.map { grid[$0] }
    let u = tIndex.map { grid[$0 + times.k] }
    let floor = Array(repeating: p.sigmaMin, count: n)
    let xt = addNoise(x, z, sigma: t)

    let target = Tape.withoutRecording { () -> Tensor in
        var xu = xt
        for j in 0..<times.k {
            let from = tIndex.map { grid[$0 + j] }, to = tIndex.map { grid[$0 + j + 1] }
            xu = heunStep(xu, from: from, to: to) { p.edmDenoiser(networks.teacher, $0, sigma: $1) }
        }
        let jumped = p.ctmJump(student, xu, t: u, s: s)
        return p.ctmJump(networks.target, jumped, t: s, s: floor)
    }
    let estimate = p.ctmJump(networks.target, p.ctmJump(student, xt, t: t, s: s), t: s, s: floor)
    let c = config.huberC ?? ictHuberC(sampleSize: x.count / n)
    let weights = Tensor(shape: [n], storage: zip(t, s).map { config.weight(t: $0, s: $1) })
    let consistency = shard.mean(pseudoHuber(estimate - target, c: c) * weights)

    let sigma = dsmSigmas(count: batch.shape[0], rng: &rng)
    let denoising = denoisingLoss({ p.edmDenoiser(student, $0, sigma: $1, target: $1) }, batch: batch,
                                  noise: Tensor.normal(like: batch, rng: &rng), sigma: sigma, shard: shard, preconditioning: p)
    return CTMLosses(consistency: consistency, denoising: denoising, times: times)
}

/// DSM levels (sony/ctm 'halflognormal'): the first half ln sigma ~ N(-1.2, 1.2^2); the rest on the
/// Karras curve at xi ~ U[0, 0.7] of the way from sigma_max towards sigma_min (the high-noise part).
public func dsmSigmas(count n: Int, rng: inout some RandomNumberGenerator, sigmaMin: Double = 0.002,
                      sigmaMax: Double = 80, rho: Double = 7) -> [Float] {
    let half = (n + 1) / 2
    let a = pow(sigmaMax, 1 / rho), b = pow(sigmaMin, 1 / rho)
    return (0..<n).map { i in
        if i < half { return Float(exp(-1.2 + 1.2 * rng.normalDouble())) }
        let xi = 0.7 * rng.uniformDouble()
        return Float(pow(a + xi * (b - a), rho))
    }
}

// MARK: - State and gradients

/// The teacher D_phi (frozen) and the target network theta^-: an EMA of the student (rate 0.999) whose
/// values are copied into a frozen network after every update.
public final class CTMState {
    public let config: CTMConfig
    public let teacher: any Backbone
    public let target: any Backbone
    public private(set) var targetEMA: EMA

    /// `target` must be a fresh network of the student's architecture; it takes the student's values.
    public init(config: CTMConfig, student: any Backbone, teacher: any Backbone, target: any Backbone) {
        self.config = config
        self.teacher = teacher
        self.target = target
        targetEMA = EMA(parameters: student.parameters, decay: config.targetEMADecay, prefix: "target")
        for p in teacher.parameters { p.freeze() }
        for p in target.parameters { p.freeze() }
        targetEMA.copy(into: target.parameters)
    }

    /// After an optimizer step: theta^- <- rate theta^- + (1 - rate) theta.
    public func update(from student: any Backbone) {
        targetEMA.update(from: student.parameters)
        targetEMA.copy(into: target.parameters)
    }

    /// Teacher weights (`teacher.*`) and theta^- (`target.*`): a CTM checkpoint resumes without the teacher file.
    public var checkpointState: [(String, Tensor)] {
        teacher.parameters.map { (join("teacher", $0.name), $0.value) } + targetEMA.state
    }

    public func loadState(from checkpoint: Checkpoint) throws {
        try checkpoint.load(into: teacher.parameters, prefix: "teacher.")   // in place: stays frozen
        try targetEMA.loadState(from: checkpoint)
        targetEMA.copy(into: target.parameters)
    }
}

public struct CTMStepResult {
    public let gradients: [Tensor]
    public let loss: Float                // L_CTM + lambda L_DSM
    public let consistencyLoss: Float, denoisingLoss: Float, dsmWeight: Float
}

/// Gradients of L_CTM + lambda L_DSM for the student's parameters. The two losses' graphs share only the
/// parameters, so two backward passes cost what one over their sum would, and give lambda's norms exactly:
/// lambda = clamp(|grad_W L_CTM| / (|grad_W L_DSM| + 1e-4), 0, 1e4) at the output layer's weight W.
/// With several processes, both gradient sets are summed over them before the weight is taken, so the
/// weight is the whole batch's; the returned gradients are the whole batch's.
public func ctmGradients(student: some Backbone, state: CTMState, batch: Tensor, noise: Tensor?, shard: Shard? = nil,
                         collective: any Collective = SingleProcess(), rng: inout some RandomNumberGenerator) throws -> CTMStepResult {
    // A class-conditional student comes bound to its rows' labels; the teacher and target see the same.
    let networks = CTMNetworks(teacher: state.teacher.labelled(like: student), target: state.target.labelled(like: student))
    let losses = ctmLosses(student: student, networks: networks, batch: batch, config: state.config,
                           noise: noise, shard: shard, rng: &rng)
    let parameters = student.parameters
    var gradients = try collective.sum(Tape.gradients(of: losses.consistency, wrt: parameters.map(\.value)))
    let denoising = try collective.sum(Tape.gradients(of: losses.denoising, wrt: parameters.map(\.value)))
    let weight: Float
    if let fixed = state.config.dsmWeight {
        weight = fixed
    } else {
        let w = parameters.firstIndex { $0 === student.outputWeight }!
        weight = min(max(l2Norm(gradients[w]) / (l2Norm(denoising[w]) + 1e-4), 0), 1e4)
    }
    for i in gradients.indices { gradients[i].addInPlace(denoising[i] * weight) }
    var values = [Double(losses.consistency.scalar), Double(losses.denoising.scalar)]
    try collective.sum(&values)
    let c = Float(values[0]), d = Float(values[1])
    return CTMStepResult(gradients: gradients, loss: c + weight * d, consistencyLoss: c, denoisingLoss: d, dsmWeight: weight)
}

/// Copies values between parameters of the same name and shape (a CTM student starts as its teacher).
/// Returns how many tensors were copied.
@discardableResult
public func copyMatchingValues(from source: some Layer, to destination: some Layer) -> Int {
    let values = Dictionary(source.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    var copied = 0
    for p in destination.parameters {
        guard let v = values[p.name], v.shape == p.shape else { continue }
        v.storage.withUnsafeBufferPointer { src in p.update { dst in _ = dst.initialize(from: src) } }
        copied += 1
    }
    return copied
}

// MARK: - The method

public final class CTM: TrainingMethod {
    public static let name = MethodName.ctm
    public static let summary = "Consistency Trajectory Model distilled from a trained EDM model (Kim et al. 2024)"
    /// Gamma-sampling; the network is also a denoiser g(x, t, t), so Heun works too.
    public static let samplers: [SamplerKind] = [.ctm, .heun]
    public static let networkTakesTarget = true
    public static let inputs: [MethodInput] = [.diffusionModel]
    /// Its DSM weight is a ratio of the whole batch's gradient norms.
    public static let lossSplitsOverRows = false

    public let options: CTMConfig
    public let state: CTMState
    /// How the student was set up from its teacher (fresh runs only).
    public private(set) var setupSummary: String?

    /// The student starts as its teacher: the shared weights are copied, the s embedding starts silent,
    /// so that it starts as g(x, t, s) = D(x, t).
    public init(config: TrainingConfig, network: any Backbone, inputs: MethodInputs) throws {
        guard let teacher = inputs.diffusionModel else { throw TrainingError.missingInput(method: .ctm, input: .diffusionModel) }
        let source = teacher.source ?? "the teacher"
        try teacher.requireDiffusionModel(for: config, source: source)
        options = config.options(as: CTMConfig.self)
        let copied = copyMatchingValues(from: teacher.network, to: network)
        state = CTMState(config: options, student: network, teacher: teacher.network, target: config.makeNetwork())
        setupSummary = "CTM student initialised from the teacher (\(copied) of \(network.parameters.count) tensors; "
            + "the s embedding starts silent); teacher: \(source) at iteration \(teacher.step)"
    }

    /// The teacher's weights and the target network come from the checkpoint: no teacher file is needed.
    public init(config: TrainingConfig, network: any Backbone, checkpoint: Checkpoint, path: String) throws {
        options = config.options(as: CTMConfig.self)
        state = CTMState(config: options, student: network, teacher: config.makeDiffusionNetwork(), target: config.makeNetwork())
        try state.loadState(from: checkpoint)
    }

    public static func samplingContext(config: TrainingConfig, checkpoint: Checkpoint, path: String) throws -> SamplingContext {
        SamplingContext(trainingGridPoints: config.options(as: CTMConfig.self).gridPoints)
    }

    public func step(network: any Backbone, batch: Tensor, noise: Tensor?, iteration: Int, config: TrainingConfig,
                     shard: Shard, collective: any Collective, rng: inout SplitMix64) throws -> MethodStep {
        let result = try ctmGradients(student: network, state: state, batch: batch, noise: noise, shard: shard,
                                      collective: collective, rng: &rng)
        return .gradients(result.gradients, StepReport(loss: result.loss, pointCount: options.gridPoints,
                                                        details: ["dsm_weight": result.dsmWeight]))
    }

    public var samplingContext: SamplingContext { SamplingContext(trainingGridPoints: options.gridPoints) }

    public func didUpdate(network: any Backbone) { state.update(from: network) }

    public func save(into checkpoint: inout Checkpoint) { checkpoint.append(state.checkpointState) }
}
