// Noise-level embedding (bench-models.md): sinusoidal features of c_noise = 0.25 ln(sigma), then a 2-layer MLP.
import CKTensor
import Glibc

/// temb = Linear(64 -> 256) -> SiLU -> Linear(256 -> 256) of [cos(1000 t f_k)] ++ [sin(1000 t f_k)],
/// t = 0.25 ln(sigma), f_k = exp(-ln(10000) k / 32), k = 0..31.
public struct NoiseEmbedding: Layer {
    public static let frequencyCount = 32
    public let l1: Linear, l2: Linear

    public init(width: Int = 256, name: String, rng: inout some RandomNumberGenerator) {
        l1 = Linear(inputSize: 2 * Self.frequencyCount, outputSize: width, name: join(name, "l1"), rng: &rng)
        l2 = Linear(inputSize: width, outputSize: width, name: join(name, "l2"), rng: &rng)
    }

    public var parameters: [Parameter] { l1.parameters + l2.parameters }

    /// The same embedding with its last layer zeroed, so that it adds nothing until trained. CTM's s
    /// embedding starts this way: a student copied from the teacher then starts as g(x, t, s) = D(x, t).
    public static func silent(width: Int = 256, name: String, rng: inout some RandomNumberGenerator) -> NoiseEmbedding {
        let e = NoiseEmbedding(width: width, name: name, rng: &rng)
        for p in e.l2.parameters { p.assign(Tensor(zeros: p.shape)) }
        return e
    }

    /// sigma: (N) raw noise levels -> (N, 64) features. Constant in sigma: no gradient flows to it.
    public static func features(sigma: Tensor) -> Tensor {
        let n = sigma.count, half = frequencyCount
        var arguments = [Float](repeating: 0, count: half)
        return Tensor(shape: [n, 2 * half]) { out in
            for b in 0..<n {
                let t = 0.25 * logf(sigma.storage[b])   // EDM's c_noise; the 1000 below is the only scaling
                for k in 0..<half { arguments[k] = 1000 * t * frequencies[k] }
                let row = out.baseAddress! + b * 2 * half
                sinesAndCosines(arguments, sines: row + half, cosines: row, count: half)
            }
        }
    }

    private static let frequencies = (0..<frequencyCount).map { Float(exp(-log(10000.0) * Double($0) / Double(frequencyCount))) }

    /// sigma: (N) -> temb (N, width)
    public func callAsFunction(sigma: Tensor) -> Tensor {
        l2(l1(Self.features(sigma: sigma)).silu())
    }
}
