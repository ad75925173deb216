// latent-net: the latent CT network (this project's design): a residual conv net at the latent resolution
// (no down-sampling: 7x7 is already small), with Non-scaling LayerNorm or GroupNorm in its blocks.
import CKTensor

/// The normalisation inside latent-net's blocks.
public enum LatentNorm: Sendable {
    /// NSLN over (C, H, W) of each sample, a learned (C, 1, 1) bias, no scale (algorithms.md 2.5).
    case nonScalingLayerNorm
    /// GroupNorm(8) with scale and bias, as unet-s (the ablation's baseline).
    case groupNorm
}

/// A norm followed by SiLU, either kind.
struct LatentNormSiLU: Layer {
    let layerNorm: LayerNorm?, groupNorm: GroupNorm?

    init(_ kind: LatentNorm, channels: Int, side: Int, name: String) {
        switch kind {
        case .nonScalingLayerNorm:
            layerNorm = LayerNorm(normalizedShape: [channels, side, side], scaling: false, name: name)
            groupNorm = nil
        case .groupNorm:
            layerNorm = nil
            groupNorm = GroupNorm(groupCount: 8, channels: channels, name: name)
        }
    }

    var parameters: [Parameter] { layerNorm?.parameters ?? groupNorm!.parameters }
    func callAsFunction(_ x: Tensor) -> Tensor { layerNorm.map { $0(x).silu() } ?? groupNorm!.silu(x) }
}

/// h = conv1(act(norm1(x))) + tproj(SiLU(temb)); h = conv2(act(norm2(h))); out = x + h.
struct LatentBlock: Layer {
    let norm1: LatentNormSiLU, conv1: Conv2D, tproj: Linear, norm2: LatentNormSiLU, conv2: Conv2D

    init(_ kind: LatentNorm, width: Int, side: Int, name: String, rng: inout some RandomNumberGenerator) {
        norm1 = LatentNormSiLU(kind, channels: width, side: side, name: join(name, "norm1"))
        conv1 = .threeByThree(width, width, name: join(name, "conv1"), rng: &rng)
        tproj = Linear(inputSize: 256, outputSize: width, name: join(name, "tproj"), rng: &rng)
        norm2 = LatentNormSiLU(kind, channels: width, side: side, name: join(name, "norm2"))
        conv2 = .threeByThree(width, width, name: join(name, "conv2"), rng: &rng)
    }

    var parameters: [Parameter] {
        let layers: [any Layer] = [norm1, conv1, tproj, norm2, conv2]
        return layers.flatMap(\.parameters)
    }

    func callAsFunction(_ x: Tensor, _ embedding: Tensor) -> Tensor {
        var h = conv1(norm1(x), sampleBias: tproj(embedding))
        h = conv2(norm2(h))
        return x + h
    }
}

/// conv_in (L -> w) -> `depth` LatentBlocks -> norm + SiLU -> conv_out (w -> L), all 3x3 at the latent size.
public struct LatentNet: Backbone {
    public let temb: NoiseEmbedding
    public let semb: NoiseEmbedding?
    public let cemb: ClassEmbedding?
    let convIn: Conv2D, blocks: [LatentBlock], normOut: LatentNormSiLU, convOut: Conv2D
    public let channels: Int, side: Int, width: Int

    public init(channels: Int, side: Int, width: Int = 64, depth: Int = 4, norm: LatentNorm = .nonScalingLayerNorm,
                conditionsOnTarget: Bool = false, classCount: Int = 0, rng: inout some RandomNumberGenerator) {
        precondition(width % 8 == 0, "LatentNet: width \(width) must be a multiple of 8")
        self.channels = channels
        self.side = side
        self.width = width
        temb = NoiseEmbedding(name: "temb", rng: &rng)
        convIn = .threeByThree(channels, width, name: "conv_in", rng: &rng)
        blocks = (0..<depth).map { LatentBlock(norm, width: width, side: side, name: "blocks.\($0)", rng: &rng) }
        normOut = LatentNormSiLU(norm, channels: width, side: side, name: "norm_out")
        convOut = .threeByThree(width, channels, name: "conv_out", rng: &rng)
        semb = conditionsOnTarget ? NoiseEmbedding.silent(name: "semb", rng: &rng) : nil
        cemb = classCount > 0 ? ClassEmbedding(classCount: classCount, name: "cemb", rng: &rng) : nil
    }

    public var sampleShape: [Int] { [channels, side, side] }
    public var conditionsOnTarget: Bool { semb != nil }
    public var classCount: Int { cemb?.classCount ?? 0 }
    public var outputWeight: Parameter { convOut.weight }
    public var parameters: [Parameter] {
        temb.parameters + convIn.parameters + blocks.flatMap(\.parameters) + normOut.parameters + convOut.parameters
            + (semb?.parameters ?? []) + (cemb?.parameters ?? [])
    }

    public func callAsFunction(_ scaledInput: Tensor, sigma: Tensor, target: Tensor?, labels: [Int]?) -> Tensor {
        let e = timeEmbedding(temb, semb, cemb, sigma: sigma, target: target, labels: labels).silu()
        var h = convIn(scaledInput)
        for block in blocks { h = block(h, e) }
        return convOut(normOut(h))
    }
}
