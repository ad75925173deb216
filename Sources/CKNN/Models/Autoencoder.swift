// A small KL-regularised convolutional autoencoder (as latent diffusion uses) for the latent CT method:
// C x S x S images <-> L x S/4 x S/4 latents.
import CKTensor

/// Encoder: conv(C -> w) -> [GN+SiLU, conv stride 2 (w -> 2w)] -> [GN+SiLU, conv stride 2 (2w -> 2w)]
/// -> GN+SiLU -> two 3x3 heads: the posterior mean and log-variance (L channels each).
/// Decoder: conv(L -> 2w) -> [GN+SiLU, up 2x, conv (2w -> 2w)] -> [GN+SiLU, up 2x, conv (2w -> w)] -> GN+SiLU -> conv(w -> C).
public struct Autoencoder: Layer {
    public let channels: Int, imageSize: Int, latentChannels: Int, width: Int
    let encIn: Conv2D, encGN1: GroupNorm, encDown1: Conv2D, encGN2: GroupNorm, encDown2: Conv2D, encGN3: GroupNorm
    let encMean: Conv2D, encLogVar: Conv2D
    let decIn: Conv2D, decGN1: GroupNorm, decUp1: Conv2D, decGN2: GroupNorm, decUp2: Conv2D, decGN3: GroupNorm, decOut: Conv2D

    public init(channels: Int = 1, imageSize: Int = 28, latentChannels: Int = 4, width: Int = 32,
                rng: inout some RandomNumberGenerator) {
        precondition(imageSize % 4 == 0, "Autoencoder: image side \(imageSize) must be a multiple of 4")
        self.channels = channels
        self.imageSize = imageSize
        self.latentChannels = latentChannels
        self.width = width
        let w = width, w2 = 2 * width
        encIn = .threeByThree(channels, w, name: "enc.conv_in", rng: &rng)
        encGN1 = GroupNorm(groupCount: 8, channels: w, name: "enc.gn1")
        encDown1 = .threeByThree(w, w2, stride: 2, name: "enc.down1", rng: &rng)
        encGN2 = GroupNorm(groupCount: 8, channels: w2, name: "enc.gn2")
        encDown2 = .threeByThree(w2, w2, stride: 2, name: "enc.down2", rng: &rng)
        encGN3 = GroupNorm(groupCount: 8, channels: w2, name: "enc.gn3")
        encMean = .threeByThree(w2, latentChannels, name: "enc.mean", rng: &rng)
        encLogVar = .threeByThree(w2, latentChannels, name: "enc.logvar", rng: &rng)
        decIn = .threeByThree(latentChannels, w2, name: "dec.conv_in", rng: &rng)
        decGN1 = GroupNorm(groupCount: 8, channels: w2, name: "dec.gn1")
        decUp1 = .threeByThree(w2, w2, name: "dec.up1", rng: &rng)
        decGN2 = GroupNorm(groupCount: 8, channels: w2, name: "dec.gn2")
        decUp2 = .threeByThree(w2, w, name: "dec.up2", rng: &rng)
        decGN3 = GroupNorm(groupCount: 8, channels: w, name: "dec.gn3")
        decOut = .threeByThree(w, channels, name: "dec.conv_out", rng: &rng)
    }

    public var imageShape: [Int] { [channels, imageSize, imageSize] }
    public var latentShape: [Int] { [latentChannels, imageSize / 4, imageSize / 4] }

    public var encoderParameters: [Parameter] {
        [encIn, encDown1, encDown2, encMean, encLogVar].flatMap(\.parameters)
            + [encGN1, encGN2, encGN3].flatMap(\.parameters)
    }
    public var decoderParameters: [Parameter] {
        [decIn, decUp1, decUp2, decOut].flatMap(\.parameters) + [decGN1, decGN2, decGN3].flatMap(\.parameters)
    }
    public var parameters: [Parameter] { encoderParameters + decoderParameters }

    /// images (N, C, S, S) -> posterior mean and log-variance, each (N, L, S/4, S/4)
    public func encode(_ x: Tensor) -> (mean: Tensor, logVariance: Tensor) {
        var h = encIn(x)
        h = encDown1(encGN1.silu(h))
        h = encDown2(encGN2.silu(h))
        h = encGN3.silu(h)
        // Clamped as latent diffusion's posterior does: an untrained head must not overflow exp.
        return (encMean(h), encLogVar(h).clamped(-30, 20))
    }

    /// latents (N, L, S/4, S/4) -> images (N, C, S, S)
    public func decode(_ z: Tensor) -> Tensor {
        var h = decIn(z)
        h = decUp1(decGN1.silu(h).upsampledNearest2x())
        h = decUp2(decGN2.silu(h).upsampledNearest2x())
        return decOut(decGN3.silu(h))
    }
}
