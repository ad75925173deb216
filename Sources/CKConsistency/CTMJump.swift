// Consistency Trajectory Models (Kim et al., ICLR 2024): the jump G(x, t, s) and gamma-sampling
// (algorithms.md 3.1 and 3.7). Training is Methods/CTM.swift.
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

/// gamma-sampling (algorithms.md 3.7) over `steps` jumps on a Karras grid of steps + 1 points from
/// sigma_max to sigma_min; gamma 0 = deterministic long jumps, 1 = consistency-model multistep.
/// `steps` network evaluations. Images are clipped to [-1, 1] at the end, as sony/ctm does; 2-D points are not
/// (the toy sets extend beyond it).
/// `times` replaces the Karras grid with explicit decreasing jump times t_0 .. t_{M-1} (the last jump lands on sigma_min),
/// e.g. points of the training grid.
public func sampleCTM(network: some Backbone, count: Int, steps: Int, gamma: Float, seed: UInt64, times: [Float]? = nil,
                      preconditioning p: Preconditioning = Preconditioning(), batchSize: Int = 256) throws -> Tensor {
    guard count > 0 else { throw SamplingError.badCount(count) }
    let levels = try ctmLevels(steps: steps, gamma: gamma, times: times, sigmaMin: p.sigmaMin)
    return sampleInBatches(shape: network.sampleShape, count: count, seed: seed, batchSize: batchSize) { noise in
        ctmChain(network: network, start: noise() * levels[0], levels: levels, gamma: gamma, noise: &noise, preconditioning: p)
    }
}

/// gamma-sampling's times t_0 > ... > t_M = sigma_min: `times` followed by sigma_min, or a Karras grid of steps + 1 points
/// from sigma_max to sigma_min. Checks gamma and the given times.
public func ctmLevels(steps: Int, gamma: Float = 0, times: [Float]? = nil, sigmaMin: Float = 0.002) throws -> [Float] {
    guard (0...1).contains(gamma) else { throw SamplingError.badGamma(gamma) }
    if let times { try validateSigmas(times, sigmaMin: sigmaMin) }
    guard times != nil || steps > 0 else { throw SamplingError.emptySigmas }
    return times.map { $0 + [sigmaMin] } ?? karrasSigmas(count: steps + 1, sigmaMin: Double(sigmaMin)).reversed().map { Float($0) }
}

/// gamma-sampling on one batch from `start` (noise at levels[0] when sampling) through `levels` (ending at sigma_min);
/// images are clipped to [-1, 1] at the end, 2-D points are not. `constrain(before, after, t, s)` runs on every jump's result `after` = G(before, t, s): the identity for
/// sampling, the projection onto the known part for editing.
func ctmChain(network: some Backbone, start: Tensor, levels: [Float], gamma: Float, noise: inout some NoiseSource,
              preconditioning p: Preconditioning,
              constrain: (_ before: Tensor, _ after: Tensor, _ t: Float, _ s: Float) -> Tensor = { _, after, _, _ in after }) -> Tensor {
    let n = start.shape[0], steps = levels.count - 1
    var x = start
    for m in 0..<steps {
        let (jump, renoise) = p.gammaStep(gamma: gamma, next: levels[m + 1])
        let jumped = p.ctmJump(network, x, t: Array(repeating: levels[m], count: n), s: Array(repeating: jump, count: n))
        x = constrain(x, jumped, levels[m], jump)
        if m < steps - 1 && renoise > 0 { x = x + noise() * renoise }
    }
    return network.sampleShape.count == 3 ? x.clamped(-1, 1) : x
}
