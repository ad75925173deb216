// mlp-toy (bench-models.md): a 4-layer SiLU MLP for 2-D points, conditioned on the noise level.
import CKTensor

/// h = inp(c_in x) + tproj(SiLU(temb)); 3 x [SiLU -> Linear(256)]; SiLU -> Linear(256 -> 2).
/// Parameter names follow the PyTorch port (`temb.l1.weight`, `hidden.0.bias`, ...).
public struct MLPToy: Backbone {
    public let temb: NoiseEmbedding
    public let semb: NoiseEmbedding?
    public let cemb: ClassEmbedding?
    public let inp: Linear, tproj: Linear
    public let hidden: [Linear]
    public let out: Linear

    public init(width: Int = 256, conditionsOnTarget: Bool = false, classCount: Int = 0, rng: inout some RandomNumberGenerator) {
        temb = NoiseEmbedding(name: "temb", rng: &rng)
        inp = Linear(inputSize: 2, outputSize: width, name: "inp", rng: &rng)
        tproj = Linear(inputSize: 256, outputSize: width, name: "tproj", rng: &rng)
        hidden = (0..<3).map { Linear(inputSize: width, outputSize: width, name: "hidden.\($0)", rng: &rng) }
        out = Linear(inputSize: width, outputSize: 2, name: "out", rng: &rng)
        // Drawn last so that a one-time network's initial weights do not depend on this option.
        semb = conditionsOnTarget ? NoiseEmbedding.silent(name: "semb", rng: &rng) : nil
        cemb = classCount > 0 ? ClassEmbedding(classCount: classCount, name: "cemb", rng: &rng) : nil
    }

    public var sampleShape: [Int] { [2] }
    public var conditionsOnTarget: Bool { semb != nil }
    public var classCount: Int { cemb?.classCount ?? 0 }
    public var outputWeight: Parameter { out.weight }
    public var parameters: [Parameter] {
        temb.parameters + inp.parameters + tproj.parameters + hidden.flatMap(\.parameters) + out.parameters
            + (semb?.parameters ?? []) + (cemb?.parameters ?? [])
    }

    public func callAsFunction(_ scaledInput: Tensor, sigma: Tensor, target: Tensor?, labels: [Int]?) -> Tensor {
        // The embedding and its projection once per distinct condition: they are 43% of the network's multiplies.
        let conditions = DistinctConditions(sigma: sigma, target: target, labels: labels)
        let e = timeEmbedding(temb, semb, cemb, sigma: conditions.sigma, target: conditions.target, labels: conditions.labels)
        var h = inp(scaledInput) + conditions.spread(tproj(e.silu()))
        for layer in hidden { h = layer(h.silu()) }
        return out(h.silu())
    }
}
