// Normalization layers: GroupNorm and LayerNorm (with the non-scaling variant of latent CT).
import CKTensor

/// Group normalization over (N, C, H, W); statistics per (sample, group).
/// References: Wu & He 2018, https://arxiv.org/abs/1803.08494
public struct GroupNorm: Layer {
    public let weight: Parameter, bias: Parameter      // (C): ones, zeros
    public let groupCount: Int, eps: Float

    public init(groupCount: Int, channels: Int, eps: Float = 1e-5, name: String) {
        precondition(channels % groupCount == 0, "GroupNorm: \(groupCount) groups must divide \(channels)")
        weight = Parameter(name: join(name, "weight"), value: Tensor(repeating: 1, shape: [channels]))
        bias = Parameter(name: join(name, "bias"), value: Tensor(zeros: [channels]))
        self.groupCount = groupCount
        self.eps = eps
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.groupNorm(groupCount: groupCount, weight: weight.value, bias: bias.value, eps: eps)
    }

    /// SiLU(GroupNorm(x)) in one fused pass: the pre-activation of every ResBlock conv.
    public func silu(_ x: Tensor) -> Tensor {
        x.groupNormSiLU(groupCount: groupCount, weight: weight.value, bias: bias.value, eps: eps)
    }
}

/// Layer normalization over the last dimensions of each sample. `scaling: false` is the
/// Non-scaling LayerNorm of latent CT (Dao et al. 2024, algorithms.md 2.5): gamma fixed to 1,
/// only a per-channel bias beta of shape (C, 1, 1) is learned.
public struct LayerNorm: Layer {
    public let weight: Parameter?, bias: Parameter
    public let normalizedShape: [Int], eps: Float

    public init(normalizedShape: [Int], scaling: Bool = true, eps: Float = 1e-5, name: String) {
        self.normalizedShape = normalizedShape
        self.eps = eps
        if scaling {
            weight = Parameter(name: join(name, "weight"), value: Tensor(repeating: 1, shape: normalizedShape))
            bias = Parameter(name: join(name, "bias"), value: Tensor(zeros: normalizedShape))
        } else {
            // Per-channel beta broadcast over the spatial dims: the count does not depend on resolution.
            let channelShape = [normalizedShape[0]] + Array(repeating: 1, count: normalizedShape.count - 1)
            weight = nil
            bias = Parameter(name: join(name, "bias"), value: Tensor(zeros: channelShape))
        }
    }

    public var parameters: [Parameter] { (weight.map { [$0] } ?? []) + [bias] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(normalizedRank: normalizedShape.count, weight: weight?.value, bias: bias.value, eps: eps)
    }
}
