// Consistency Trajectory Models (Kim et al., ICLR 2024): the jump G(x, t, s), the (t, u, s) sampling,
// and the soft consistency matching + DSM losses. algorithms.md 3.1-3.4.
import Glibc
import CKTensor
import CKNN

extension Preconditioning {
    /// G(x, t, s) = coefX x + coefF F with coefX = s/t + (1 - s/t) cSkip^EDM(t), coefF = (1 - s/t) cOut^EDM(t).
    /// At s == t: coefX == 1 and coefF == 0 exactly, so G(x, t, t) = x bit for bit.
    public func ctmCoefficients(t: Float, s: Float) -> (x: Float, f: Float) {
        let ratio = s / t
        return (ratio + (1 - ratio) * edmCSkip(t), (1 - ratio) * edmCOut(t))
    }

    /// CTM's jump G_theta(x, t, s) for a two-time network (per-sample t and s, s <= t).
    public func ctmJump(_ network: some Backbone, _ x: Tensor, t: [Float], s: [Float]) -> Tensor {
        let n = x.shape[0]
        precondition(t.count == n && s.count == n, "ctmJump: \(t.count) t and \(s.count) s for a batch of \(n)")
        let out = network(x * perSample(t.map(cIn), rank: x.rank), sigma: Tensor(shape: [n], storage: t),
                          target: Tensor(shape: [n], storage: s))
        let coefficients = zip(t, s).map { ctmCoefficients(t: $0, s: $1) }
        return perSample(coefficients.map(\.x), rank: x.rank) * x + perSample(coefficients.map(\.f), rank: x.rank) * out
    }

    /// gamma-sampling's jump target and re-noise standard deviation towards t_next (sony/ctm's form,
    /// with the sigma_min offset): s' = sqrt(1 - gamma^2)(t_next - sigma_min) + sigma_min.
    public func gammaStep(gamma: Float, next: Float) -> (jump: Float, renoise: Float) {
        // In Double, rounded once: t_next^2 - s'^2 cancels (400 - 396 at gamma 0.1, t_next 20), which left the
        // Float re-noise std 3.5e-6 off. From Float inputs (t - sigmaMin) + sigmaMin is exact, so gamma 0 gives 0.
        let g = Double(gamma), t = Double(next), floor = Double(sigmaMin)
        let jump = (1 - g * g).squareRoot() * (t - floor) + floor
        return (Float(jump), Float(max(0, t * t - jump * jump).squareRoot()))
    }
}

/// CTM defaults (algorithms.md 3.8), scaled for a CPU: the grid and schedules follow sony/ctm.
public struct CTMConfig: Sendable, Codable, Equatable {
    /// Karras grid points N (descending index: 0 = sigma_max).
    public var gridPoints = 18
    /// EMA rate of the target network theta^- used for the outer jumps.
    public var targetEMADecay: Float = 0.999
    /// DSM weight: nil = adaptive (gradient-norm ratio at the output layer), else this constant.
    public var dsmWeight: Float? = nil
    /// Pseudo-Huber c for the distance; nil = 0.00054 sqrt(d) (the port's stand-in for LPIPS).
    public var huberC: Float? = nil

    public init() {}

    /// The grid, descending: grid[0] = sigma_max, grid[N-1] = sigma_min.
    public var grid: [Float] { karrasSigmas(count: gridPoints).reversed().map { Float($0) } }
}

/// P(k) proportional to k for k = 1..maxSteps (sony/ctm `heun_step_strategy='weighted'`).
public func heunStepDistribution(maxSteps: Int) -> [Double] {
    let total = Double(maxSteps * (maxSteps + 1) / 2)
    return (1...maxSteps).map { Double($0) / total }
}

/// One batch's times on the descending grid: a single teacher length k; per sample t = grid[n],
/// u = grid[n + k], s = grid[m] with m uniform in [n + k, N - 1] (so s <= u < t).
public struct CTMTimes: Equatable {
    public let k: Int
    public let tIndex: [Int], sIndex: [Int]

    public static func draw(batchSize: Int, gridPoints n: Int, rng: inout some RandomNumberGenerator) -> CTMTimes {
        let probabilities = heunStepDistribution(maxSteps: n - 1)
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
public func ctmLosses(student: some Backbone, networks: CTMNetworks, batch x: Tensor, config: CTMConfig,
                      noise: Tensor? = nil, rng: inout some RandomNumberGenerator,
                      preconditioning p: Preconditioning = Preconditioning()) -> CTMLosses {
    let n = x.shape[0], grid = config.grid
    let times = CTMTimes.draw(batchSize: n, gridPoints: config.gridPoints, rng: &rng)
    let z = noise ?? Tensor.normal(like: x, rng: &rng)
    let t = times.tIndex.map { grid[$0] }, s = times.sIndex.map { grid[$0] }
    let u = times.tIndex.map { grid[$0 + times.k] }
    let floor = Array(repeating: p.sigmaMin, count: n)
    let xt = addNoise(x, z, sigma: t)

    let target = Tape.withoutRecording { () -> Tensor in
        var xu = xt
        for j in 0..<times.k {
            let from = times.tIndex.map { grid[$0 + j] }, to = times.tIndex.map { grid[$0 + j + 1] }
            xu = heunStep(xu, from: from, to: to) { p.edmDenoiser(networks.teacher, $0, sigma: $1) }
        }
        let jumped = p.ctmJump(student, xu, t: u, s: s)
        return p.ctmJump(networks.target, jumped, t: s, s: floor)
    }
    let estimate = p.ctmJump(networks.target, p.ctmJump(student, xt, t: t, s: s), t: s, s: floor)
    let c = config.huberC ?? ictHuberC(sampleSize: x.count / n)
    let consistency = pseudoHuber(estimate - target, c: c).mean()

    let sigma = dsmSigmas(count: n, rng: &rng)
    let denoising = denoisingLoss({ p.edmDenoiser(student, $0, sigma: $1, target: $1) }, batch: x,
                                  noise: Tensor.normal(like: x, rng: &rng), sigma: sigma, preconditioning: p)
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

/// gamma-sampling (algorithms.md 3.7) over `steps` jumps on a Karras grid of steps + 1 points from
/// sigma_max to sigma_min; gamma 0 = deterministic long jumps, 1 = consistency-model multistep.
/// `steps` network evaluations. Images are clipped to [-1, 1] at the end, as sony/ctm does; 2-D points are not
/// (the toy sets extend beyond it).
/// `times` replaces the Karras grid with explicit decreasing jump times t_0 .. t_{M-1} (the last jump lands on sigma_min),
/// e.g. points of the training grid.
public func sampleCTM(network: some Backbone, count: Int, steps: Int, gamma: Float, seed: UInt64, times: [Float]? = nil,
                      preconditioning p: Preconditioning = Preconditioning(), batchSize: Int = 256) throws -> Tensor {
    guard count > 0 else { throw SamplingError.badCount(count) }
    guard (0...1).contains(gamma) else { throw SamplingError.badGamma(gamma) }
    if let times { try validateSigmas(times, sigmaMin: p.sigmaMin) }
    let levels = times.map { $0 + [p.sigmaMin] } ?? karrasSigmas(count: steps + 1, sigmaMin: Double(p.sigmaMin)).reversed().map { Float($0) }
    let steps = levels.count - 1
    guard steps > 0 else { throw SamplingError.emptySigmas }
    return sampleInBatches(shape: network.sampleShape, count: count, seed: seed, batchSize: batchSize) { noise in
        let n = noise.count
        var x = noise() * levels[0]
        for m in 0..<steps {
            let (jump, renoise) = p.gammaStep(gamma: gamma, next: levels[m + 1])
            x = p.ctmJump(network, x, t: Array(repeating: levels[m], count: n), s: Array(repeating: jump, count: n))
            if m < steps - 1 && renoise > 0 { x = x + noise() * renoise }
        }
        return network.sampleShape.count == 3 ? x.clamped(-1, 1) : x
    }
}
