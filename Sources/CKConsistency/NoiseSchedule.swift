// Noise levels for iCT: the Karras grid, the discretization curriculum N(k), lognormal pair sampling.
import Glibc

/// Karras et al. 2022 grid, ASCENDING: sigma_1 = sigmaMin ... sigma_N = sigmaMax (algorithms.md 0.1).
/// Built in Double: the smallest gaps (~1.5e-6 at N = 1281) would cancel in Float.
public func karrasSigmas(count n: Int, sigmaMin: Double = 0.002, sigmaMax: Double = 80, rho: Double = 7) -> [Double] {
    precondition(n >= 2, "karrasSigmas: need at least 2 points, got \(n)")
    let a = pow(sigmaMin, 1 / rho), b = pow(sigmaMax, 1 / rho)
    return (0..<n).map { i in pow(a + Double(i) / Double(n - 1) * (b - a), rho) }
}

/// iCT discretization curriculum (Song & Dhariwal 2023, eq. 8; algorithms.md 1.4).
public struct ICTCurriculum: Sendable, Equatable {
    public var totalSteps: Int, s0: Int, s1: Int

    public init(totalSteps: Int, s0: Int = 10, s1: Int = 1280) {
        self.totalSteps = totalSteps
        self.s0 = s0
        self.s1 = s1
    }

    /// K' = floor(K / (log2(floor(s1/s0)) + 1)), at least 1.
    public var stageLength: Int {
        let stages = log2(Double(s1 / s0)) + 1
        return max(1, Int((Double(totalSteps) / stages).rounded(.down)))
    }

    /// Number of sigma POINTS at 0-based iteration k: min(s0 2^floor(k/K'), s1) + 1.
    public func pointCount(atStep k: Int) -> Int {
        let doublings = k / stageLength
        let intervals = doublings >= 62 ? s1 : min(s0 << doublings, s1)
        return intervals + 1
    }
}

/// The grid for one N with its discretised-lognormal pair probabilities and iCT weights.
/// Pair j (0-based) is (sigma_{j+1}, sigma_{j+2}) in the paper's 1-based ascending notation.
public struct SigmaPairTable: Sendable {
    public let sigmas: [Double]                  // ascending, N points
    public let probabilities: [Double]           // N - 1 pairs, sum 1
    public let lambdas: [Double]                 // 1 / (sigma_{i+1} - sigma_i), from the Double grid
    private let cumulative: [Double]

    public init(pointCount n: Int, pMean: Double = -1.1, pStd: Double = 2.0) {
        let sigmas = karrasSigmas(count: n)
        self.sigmas = sigmas
        // Mass of the lognormal N(pMean, pStd^2) over ln sigma on [sigma_i, sigma_{i+1}] (algorithms.md 1.5).
        let cdf = sigmas.map { erf((log($0) - pMean) / (2.0.squareRoot() * pStd)) }
        let masses = (0..<(n - 1)).map { cdf[$0 + 1] - cdf[$0] }
        let total = masses.reduce(0, +)
        let probabilities = masses.map { $0 / total }
        self.probabilities = probabilities
        lambdas = (0..<(n - 1)).map { 1 / (sigmas[$0 + 1] - sigmas[$0]) }
        var running = 0.0
        cumulative = probabilities.map { running += $0; return running }
    }

    public var pairCount: Int { probabilities.count }

    /// Draws a pair index by inverse CDF over the normalised probabilities.
    public func samplePair(rng: inout some RandomNumberGenerator) -> Int {
        let u = rng.uniformDouble() * cumulative[cumulative.count - 1]
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
