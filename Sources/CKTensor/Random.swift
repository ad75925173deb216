// Seeded random numbers: SplitMix64, uniform and normal draws, tensors of noise.
import Glibc

/// SplitMix64 (Steele, Lea & Flood 2014): one 64-bit word of state, so it is saved whole in a checkpoint.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An independent stream derived from this one and `index` (per-sample generators).
    public func split(_ index: UInt64) -> SplitMix64 {
        var g = SplitMix64(seed: state ^ (index &* 0xD1B5_4A32_D192_ED03))
        _ = g.next()
        return SplitMix64(seed: g.next())
    }
}

extension RandomNumberGenerator {
    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniformDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Standard normal (Box-Muller on doubles; one of the pair is used so streams stay simple).
    @inline(__always)
    public mutating func normalDouble() -> Double {
        let u1 = 1 - uniformDouble()            // (0, 1]: log never sees 0
        let u2 = uniformDouble()
        return (-2 * Glibc.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}


extension Tensor {
    /// Standard normal noise.
    public static func normal(shape: [Int], rng: inout some RandomNumberGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        var i = 0
        // Both Box-Muller outputs are used: half the log/sqrt work.
        while i < n {
            let u1 = 1 - rng.uniformDouble(), u2 = rng.uniformDouble()
            let r = (-2 * Glibc.log(u1)).squareRoot(), a = 2 * Double.pi * u2
            values[i] = Float(r * Glibc.cos(a))
            if i + 1 < n { values[i + 1] = Float(r * Glibc.sin(a)) }
            i += 2
        }
        return Tensor(shape: shape, storage: values)
    }

    public static func normal(like x: Tensor, rng: inout some RandomNumberGenerator) -> Tensor {
        normal(shape: x.shape, rng: &rng)
    }

    /// Uniform in [low, high).
    public static func uniform(shape: [Int], low: Float = 0, high: Float = 1, rng: inout some RandomNumberGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = low + (high - low) * Float(rng.uniformDouble()) }
        return Tensor(shape: shape, storage: values)
    }
}
