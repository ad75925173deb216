// EDM (Karras et al. 2022): the denoiser D(x, sigma), the weighted denoising loss, and the Heun ODE solver
// (the deterministic sampler and CTM's teacher solver). algorithms.md 3.6; training is Methods/EDM.swift.
import Glibc
import CKTensor
import CKNN

extension Preconditioning {
    /// D(x, sigma) = cSkip^EDM x + cOut^EDM F(cIn x, sigma[, target]). With a two-time network and
    /// target s this is CTM's g(x, t, s); target == sigma gives the denoiser.
    public func edmDenoiser(_ network: some Backbone, _ x: Tensor, sigma: [Float], target: [Float]? = nil) -> Tensor {
        let n = x.shape[0]
        precondition(sigma.count == n, "edmDenoiser: \(sigma.count) sigmas for a batch of \(n)")
        let out = network(x * perSample(sigma.map(cIn), rank: x.rank), sigma: Tensor(shape: [n], storage: sigma),
                          target: network.conditionsOnTarget ? Tensor(shape: [n], storage: target ?? sigma) : nil)
        return perSample(sigma.map(edmCSkip), rank: x.rank) * x + perSample(sigma.map(edmCOut), rank: x.rank) * out
    }

    /// EDM's loss weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2.
    public func edmWeight(_ s: Float) -> Float {
        (s * s + sigmaData * sigmaData) / ((s * sigmaData) * (s * sigmaData))
    }
}

/// Mean over each sample's elements: (N, ...) -> (N).
func meanPerSample(_ t: Tensor) -> Tensor {
    t.reshaped([t.shape[0], -1]).mean(alongAxes: [1])
}

/// Weighted denoising loss mean_b w(sigma_b) mean_j (D(x + sigma z, sigma) - x)^2 at the given levels.
/// On `shard` of the batch (all of it by default): that part of the batch mean.
public func denoisingLoss(_ denoise: (Tensor, [Float]) -> Tensor, batch: Tensor, noise: Tensor, sigma allSigma: [Float],
                          shard: Shard? = nil, preconditioning p: Preconditioning = Preconditioning()) -> Tensor {
    let shard = shard ?? .whole(batch.shape[0])
    let x = shard.rows(batch), z = shard.rows(noise), sigma = shard.values(allSigma)
    let d = denoise(addNoise(x, z, sigma: sigma), sigma)
    let weight = Tensor(shape: [sigma.count], storage: sigma.map(p.edmWeight))
    return shard.mean(meanPerSample((d - x).squared()) * weight)
}

/// One Heun step of the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma from `from` to `to`
/// (per sample; EDM Algorithm 1 without churn). Where `to` is 0 the step is Euler's, as EDM's last step.
public func heunStep(_ x: Tensor, from ta: [Float], to tb: [Float], denoise: (Tensor, [Float]) -> Tensor) -> Tensor {
    let r = x.rank
    let da = (x - denoise(x, ta)) / perSample(ta, rank: r)
    let h = perSample(zip(ta, tb).map { $1 - $0 }, rank: r)
    let euler = x + h * da
    guard tb.contains(where: { $0 > 0 }) else { return euler }
    // Samples that land on 0 keep the Euler step (their slope at 0 is undefined); 0/0 is avoided by
    // evaluating them at a placeholder level and masking.
    let safe = tb.map { $0 > 0 ? $0 : 1 }
    let db = (euler - denoise(euler, safe)) / perSample(safe, rank: r)
    let heun = x + h * (da + db) * 0.5
    guard tb.contains(where: { $0 == 0 }) else { return heun }
    let mask = perSample(tb.map { $0 > 0 ? 1 : 0 }, rank: r)
    return heun * mask + euler * (1 - mask)
}

/// EDM's deterministic sampler: `steps` Karras levels from sigmaMax to sigmaMin, then 0; Heun steps,
/// Euler for the last. 2 * steps - 1 network evaluations. Sample k's start noise comes from its own
/// generator, split from `seed` by k.
public func sampleHeun(network: some Backbone, count: Int, steps: Int, seed: UInt64,
                       preconditioning p: Preconditioning = Preconditioning(), batchSize: Int = 256) throws -> Tensor {
    guard count > 0 else { throw SamplingError.badCount(count) }
    guard steps > 0 else { throw SamplingError.emptySigmas }
    let levels = heunLevels(steps: steps, sigmaMin: p.sigmaMin)
    return sampleInBatches(shape: network.sampleShape, count: count, seed: seed, batchSize: batchSize) { noise in
        heunSolve(noise() * levels[0], levels: levels) { p.edmDenoiser(network, $0, sigma: $1) }
    }
}

/// Integrates the probability-flow ODE through the decreasing `levels` (the same for every sample).
public func heunSolve(_ x: Tensor, levels: [Float], denoise: (Tensor, [Float]) -> Tensor) -> Tensor {
    let n = x.shape[0]
    var x = x
    for (a, b) in zip(levels, levels.dropFirst()) {
        x = heunStep(x, from: Array(repeating: a, count: n), to: Array(repeating: b, count: n), denoise: denoise)
    }
    return x
}

/// EDM's time steps for `steps` Heun steps: a descending Karras grid of `steps` points, then 0.
public func heunLevels(steps: Int, sigmaMin: Float = 0.002, sigmaMax: Float = 80) -> [Float] {
    guard steps > 1 else { return [sigmaMax, 0] }
    return karrasSigmas(count: steps, sigmaMin: Double(sigmaMin), sigmaMax: Double(sigmaMax)).reversed().map { Float($0) } + [0]
}
