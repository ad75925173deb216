// How heavy-tailed a set of normalised latents is: the numbers latent CT's Cauchy loss is motivated by.
import Glibc
import CKTensor

/// Tail statistics of values in units of their own per-element std (normalised latents divided by 0.5).
public struct TailStatistics: Sendable {
    public let count: Int
    /// Excess kurtosis, E[(v - mean)^4] / var^2 - 3 (0 for a Gaussian).
    public let excessKurtosis: Double
    /// Share of values with |v| > 5 (a Gaussian: 5.7e-7).
    public let beyondFive: Double
    public let maxAbs: Double

    public init(_ values: [Double]) {
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        var m2 = 0.0, m4 = 0.0
        for v in values { let d = (v - mean) * (v - mean); m2 += d; m4 += d * d }
        m2 /= n; m4 /= n
        count = values.count
        excessKurtosis = m4 / (m2 * m2) - 3
        beyondFive = Double(values.filter { abs($0) > 5 }.count) / n
        maxAbs = values.map(abs).max() ?? 0
    }
}

/// Overall and per-channel tail statistics of normalised latents (N, C, H, W), in std units.
public func latentTails(_ normalised: Tensor) -> (all: TailStatistics, perChannel: [TailStatistics]) {
    let n = normalised.shape[0], c = normalised.shape[1], plane = normalised.count / (n * c)
    let values = normalised.storage.map { Double($0) / 0.5 }
    var channels: [TailStatistics] = []
    for k in 0..<c {
        var mine: [Double] = []
        mine.reserveCapacity(n * plane)
        for b in 0..<n {
            let start = (b * c + k) * plane
            mine += values[start ..< start + plane]
        }
        channels.append(TailStatistics(mine))
    }
    return (TailStatistics(values), channels)
}

/// Histogram of `values` over [-limit, limit] in `bins` bins, as densities (count / (total * width)).
public func densityHistogram(_ values: [Double], limit: Double, bins: Int) -> (centers: [Double], density: [Double]) {
    let width = 2 * limit / Double(bins)
    var counts = [Double](repeating: 0, count: bins)
    for v in values where abs(v) < limit { counts[min(bins - 1, Int((v + limit) / width))] += 1 }
    let total = Double(values.count)
    return ((0..<bins).map { -limit + (Double($0) + 0.5) * width }, counts.map { $0 / (total * width) })
}
