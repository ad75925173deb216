// Toy 2-D distributions, exactly as in shared/peers/README.md "Toy distributions (exact)": std 0.5, centred.
import CKTensor
import Glibc

public enum Toy2D: String, CaseIterable, Sendable {
    case checkerboard
    case eightGaussians = "8gaussians"
    case swissroll

    /// sqrt(3)/4: each coordinate is uniform on [-2, 2] (std 2/sqrt 3) before scaling.
    public static let checkerboardScale = 3.0.squareRoot() / 4
    public static let gaussiansRadius = 2.0, gaussiansModeStd = 0.2
    /// 0.5/sqrt(2.04): per-coordinate variance before scaling is 4 * 1/2 + 0.2^2.
    public static let gaussiansScale = 0.5 / (gaussiansRadius * gaussiansRadius / 2 + gaussiansModeStd * gaussiansModeStd).squareRoot()
    public static let swissNoise = 0.5
    /// Exact means of t cos t and t sin t for t ~ U[1.5 pi, 4.5 pi].
    public static let swissMean = (2.0, 2.0 / (3.0 * Double.pi))
    /// 0.5/sqrt(V), V = (9.75 pi^2 - 4 - 4/(9 pi^2))/2 + 0.25: the mean per-coordinate variance before scaling.
    public static let swissScale = 0.5 / ((9.75 * Double.pi * Double.pi - swissMean.0 * swissMean.0 - swissMean.1 * swissMean.1) / 2
                                          + swissNoise * swissNoise).squareRoot()

    /// `count` points as (count, 2); every draw comes from `rng`, so the same seed gives the same points.
    public func sample(count: Int, rng: inout some RandomNumberGenerator) -> Tensor {
        var v = [Float](repeating: 0, count: 2 * count)
        for i in 0..<count {
            let (x, y) = point(&rng)
            v[2 * i] = Float(x); v[2 * i + 1] = Float(y)
        }
        return Tensor(shape: [count, 2], storage: v)
    }

    /// One point (float64).
    public func point(_ rng: inout some RandomNumberGenerator) -> (Double, Double) {
        switch self {
        case .checkerboard:
            // Cell (c, r) covers [-2+c, -1+c) x [-2+r, -1+r), filled iff c + r is even:
            // r = 2u + (c mod 2) makes every filled cell equally likely (1/8).
            let c = Int.random(in: 0..<4, using: &rng)
            let r = 2 * Int.random(in: 0..<2, using: &rng) + c % 2
            let x = -2 + Double(c) + rng.uniformDouble(), y = -2 + Double(r) + rng.uniformDouble()
            return (x * Self.checkerboardScale, y * Self.checkerboardScale)
        case .eightGaussians:
            let k = Int.random(in: 0..<8, using: &rng), angle = 2 * Double.pi * Double(k) / 8
            let x = Self.gaussiansRadius * cos(angle) + Self.gaussiansModeStd * rng.normalDouble()
            let y = Self.gaussiansRadius * sin(angle) + Self.gaussiansModeStd * rng.normalDouble()
            return (x * Self.gaussiansScale, y * Self.gaussiansScale)
        case .swissroll:
            let t = 1.5 * Double.pi * (1 + 2 * rng.uniformDouble())
            let x = t * cos(t) - Self.swissMean.0 + Self.swissNoise * rng.normalDouble()
            let y = t * sin(t) - Self.swissMean.1 + Self.swissNoise * rng.normalDouble()
            return (x * Self.swissScale, y * Self.swissScale)
        }
    }
}

/// Fresh toy points for every batch: (N, 2).
public struct ToyDataset: Dataset {
    public let distribution: Toy2D
    public init(_ distribution: Toy2D) { self.distribution = distribution }
    public var sampleShape: [Int] { [2] }
    public var count: Int? { nil }
    public mutating func nextBatch(size: Int, rng: inout some RandomNumberGenerator) -> Tensor {
        distribution.sample(count: size, rng: &rng)
    }
}
