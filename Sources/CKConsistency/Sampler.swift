// Consistency sampling: one step f(sigma_max z, sigma_max), or multistep with re-noising (CM Algorithm 1).
import CKTensor
import CKNN

public enum SamplingError: Error, CustomStringConvertible, Equatable {
    case emptySigmas
    case notDecreasing([Float])
    case outOfRange(Float, min: Float, max: Float)
    case badCount(Int)
    case badGamma(Float)
    /// The network produced NaN or infinite values (weights that diverged).
    case nonFiniteSamples(count: Int, total: Int)

    public var description: String {
        switch self {
        case .emptySigmas: return "the step list is empty: give at least one noise level or step"
        case .notDecreasing(let s): return "noise levels \(s) must be strictly decreasing (e.g. 80,0.8)"
        case .outOfRange(let s, let lo, let hi): return "noise level \(s) is outside (\(lo), \(hi)]: use values in that range"
        case .badCount(let n): return "sample count \(n) must be positive"
        case .badGamma(let g): return "gamma \(g) must be in [0, 1] (0: deterministic jumps, 1: consistency-style multistep)"
        case let .nonFiniteSamples(count, total):
            return "\(count) of \(total) sample values are NaN or infinite: the model's weights have diverged"
        }
    }
}

/// Checks a step list: non-empty, each in (sigmaMin, sigmaMax], strictly decreasing.
public func validateSigmas(_ sigmas: [Float], sigmaMin: Float = 0.002, sigmaMax: Float = 80) throws {
    guard !sigmas.isEmpty else { throw SamplingError.emptySigmas }
    for s in sigmas where !(s > sigmaMin && s <= sigmaMax) { throw SamplingError.outOfRange(s, min: sigmaMin, max: sigmaMax) }
    for (a, b) in zip(sigmas, sigmas.dropFirst()) where !(b < a) { throw SamplingError.notDecreasing(sigmas) }
}

/// Default step lists: 1 step [80]; otherwise sigma_max then levels spread over a Karras grid.
/// These match the PyTorch port's toy lists for 2 and 4 steps ([80, 0.8], [80, 2, 0.8, 0.2]).
public func defaultSigmas(steps: Int, sigmaMax: Float = 80) -> [Float] {
    switch steps {
    case 1: return [sigmaMax]
    case 2: return [sigmaMax, 0.8]
    case 4: return [sigmaMax, 2.0, 0.8, 0.2]
    default:
        // Karras levels between 2.5 and 0.05, evenly in sigma^(1/7), after the first jump from sigma_max.
        let grid = karrasSigmas(count: steps - 1, sigmaMin: 0.05, sigmaMax: 2.5).reversed().map { Float($0) }
        return [sigmaMax] + grid
    }
}

/// Samples `count` items with multistep consistency sampling over `sigmas` (sigmas[0] is the first jump).
/// Sample k draws all its noise from its own generator, split from `seed` by k: the same k gives the
/// same image at any batch size or count.
/// `boundary` picks the consistency function's scalings: iCT's sigma_min-offset ones, or EDM's for networks
/// tuned from a denoiser (ECT).
public func sampleConsistency(network: some Backbone, count: Int, sigmas: [Float], seed: UInt64,
                              boundary: ConsistencyBoundary = .sigmaMin,
                              preconditioning p: Preconditioning = Preconditioning(), batchSize: Int = 256) throws -> Tensor {
    guard count > 0 else { throw SamplingError.badCount(count) }
    try validateSigmas(sigmas, sigmaMin: p.sigmaMin)
    let f = p.consistencyFunction(network, boundary: boundary)
    return sampleInBatches(shape: network.sampleShape, count: count, seed: seed, batchSize: batchSize) { noise in
        consistencyChain(start: noise() * sigmas[0], sigmas: sigmas, sigmaMin: p.sigmaMin, noise: &noise, f: f)
    }
}

/// CM Algorithm 1 on one batch from `start` (noise at sigmas[0] when sampling): x = f(start, sigma_0), then for
/// each next level s, x = f(x + sqrt(s^2 - sigma_min^2) z, s) with a fresh draw z. `constrain` runs on every output
/// of f: the identity for sampling, the projection onto the known part for editing (CM Algorithm 4).
func consistencyChain(start: Tensor, sigmas: [Float], sigmaMin: Float, noise: inout some NoiseSource,
                      f: (Tensor, Float) -> Tensor, constrain: (Tensor) -> Tensor = { $0 }) -> Tensor {
    var x = constrain(f(start, sigmas[0]))
    for s in sigmas.dropFirst() {
        x = constrain(f(x + noise() * (s * s - sigmaMin * sigmaMin).squareRoot(), s))
    }
    return x
}

extension Preconditioning {
    /// f(x, sigma) at one level for a batch, with the scalings `boundary` names.
    func consistencyFunction(_ network: some Backbone, boundary: ConsistencyBoundary) -> (Tensor, Float) -> Tensor {
        { x, s in
            let sigma = Array(repeating: s, count: x.shape[0])
            return boundary == .edm ? self.edmDenoiser(network, x, sigma: sigma) : self.consistency(network, x, sigma: sigma)
        }
    }
}

/// Where a consistency function meets the identity: iCT's f(x, sigma_min) = x, or EDM's f(x, 0) = x.
public enum ConsistencyBoundary: String, Sendable {
    case sigmaMin = "sigma-min", edm
}

/// Where a sampler's noise comes from, one batch at a time: each call gives the next (N, sampleShape...) draw.
protocol NoiseSource {
    /// Samples in the batch.
    var count: Int { get }
    mutating func callAsFunction() -> Tensor
}

/// Fresh standard-normal tensors for one batch of samples; each call draws the next one, sample k
/// from its own generator.
public struct SampleNoise: NoiseSource {
    var generators: [SplitMix64]
    let shape: [Int]
    public var count: Int { generators.count }

    public mutating func callAsFunction() -> Tensor {
        let per = shape.reduce(1, *)
        var values = [Float]()
        values.reserveCapacity(count * per)
        for k in generators.indices { values += Tensor.normal(shape: [per], rng: &generators[k]).storage }
        return Tensor(shape: [count] + shape, storage: values)
    }
}

/// Runs a sampler over `count` samples in batches, without recording gradients. Sample k draws all of its
/// noise from a generator split from `seed` by k: the same k gives the same sample at any batch size or count.
func sampleInBatches(shape: [Int], count: Int, seed: UInt64, batchSize: Int,
                     _ body: (inout SampleNoise) -> Tensor) -> Tensor {
    let root = SplitMix64(seed: seed)
    return runInBatches(shape: shape, generators: (0..<count).map { root.split(UInt64($0)) }, batchSize: batchSize) { noise, _ in
        body(&noise)
    }
}

/// Runs `body` over batches of rows, row k drawing its noise from `generators[k]`, without recording gradients;
/// `body` gets the batch's noise and its rows' range. Returns (rows, shape...).
/// With two or more threads a batch runs in one piece of rows per core (`CoreShards`), at once: rows are
/// independent, so `body` must only read what it shares.
func runInBatches(shape: [Int], generators: [SplitMix64], batchSize: Int,
                  _ body: (inout SampleNoise, Range<Int>) -> Tensor) -> Tensor {
    var out = [Float]()
    out.reserveCapacity(generators.count * shape.reduce(1, *))
    for start in stride(from: 0, to: generators.count, by: batchSize) {
        let rows = start..<min(start + batchSize, generators.count)
        let pieces = CoreShards.pieces(of: Shard(range: rows, batchSize: generators.count)).map(\.range)
        let results = Tape.withoutRecording {
            Parallel.onCores(pieces.count) { i in
                var noise = SampleNoise(generators: Array(generators[pieces[i]]), shape: shape)
                return body(&noise, pieces[i])
            }
        }
        for piece in results { out += piece.storage }
    }
    return Tensor(shape: [generators.count] + shape, storage: out)
}
