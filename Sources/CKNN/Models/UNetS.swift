// unet-s (bench-models.md): a small U-Net for 1x28x28 images, three resolutions, GroupNorm(8) ResBlocks.
import CKTensor

/// h = conv1(SiLU(GN(x))) + tproj(SiLU(temb)); h = conv2(SiLU(GN(h))); out = h + skip(x).
public struct ResBlock: Layer {
    public let gn1: GroupNorm, conv1: Conv2D, tproj: Linear, gn2: GroupNorm, conv2: Conv2D
    public let skip: Conv2D?

    public init(_ cin: Int, _ cout: Int, embeddingWidth: Int = 256, name: String, rng: inout some RandomNumberGenerator) {
        gn1 = GroupNorm(groupCount: 8, channels: cin, name: join(name, "gn1"))
        conv1 = .threeByThree(cin, cout, name: join(name, "conv1"), rng: &rng)
        tproj = Linear(inputSize: embeddingWidth, outputSize: cout, name: join(name, "tproj"), rng: &rng)
        gn2 = GroupNorm(groupCount: 8, channels: cout, name: join(name, "gn2"))
        conv2 = .threeByThree(cout, cout, name: join(name, "conv2"), rng: &rng)
        skip = cin == cout ? nil : Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 1, name: join(name, "skip"), rng: &rng)
    }

    public var parameters: [Parameter] {
        gn1.parameters + conv1.parameters + tproj.parameters + gn2.parameters + conv2.parameters + (skip?.parameters ?? [])
    }

    /// x: (N, cin, H, W), embedding: SiLU(temb) (N, 256) -> (N, cout, H, W)
    public func callAsFunction(_ x: Tensor, _ embedding: Tensor) -> Tensor {
        var h = conv1(gn1.silu(x), sampleBias: tproj(embedding))
        h = conv2(gn2.silu(h))
        return h + (skip.map { $0(x) } ?? x)
    }
}

/// Layer names follow the PyTorch port (`rb1.conv1.weight`, `up_rb3.skip.bias`, ...).
public struct UNetS: Backbone {
    public let temb: NoiseEmbedding
    public let semb: NoiseEmbedding?
    public let cemb: ClassEmbedding?
    public let convIn: Conv2D, rb1: ResBlock, down1: Conv2D, rb2: ResBlock, down2: Conv2D, rb3: ResBlock
    public let mid1: ResBlock, mid2: ResBlock
    public let upRB1: ResBlock, upRB2: ResBlock, upConv1: Conv2D, upRB3: ResBlock, upRB4: ResBlock
    public let upConv2: Conv2D, upRB5: ResBlock, upRB6: ResBlock
    public let gnOut: GroupNorm, convOut: Conv2D
    public let channels: Int, imageSize: Int, width: Int

    /// `width` 32 is the reference `unet-s`; 16 is `unet-xs` (about a quarter of the work), for quick runs.
    /// `conditionsOnTarget` adds CTM's second time embedding.
    public init(channels: Int = 1, imageSize: Int = 28, width: Int = 32, conditionsOnTarget: Bool = false, classCount: Int = 0,
                rng: inout some RandomNumberGenerator) {
        precondition(imageSize % 4 == 0, "UNetS: image side \(imageSize) must be a multiple of 4 (two 2x downsamplings)")
        precondition(width % 8 == 0, "UNetS: width \(width) must be a multiple of 8 (GroupNorm(8))")
        self.channels = channels
        self.imageSize = imageSize
        self.width = width
        let w = width, w2 = 2 * width
        temb = NoiseEmbedding(name: "temb", rng: &rng)
        convIn = .threeByThree(channels, w, name: "conv_in", rng: &rng)
        rb1 = ResBlock(w, w, name: "rb1", rng: &rng)
        down1 = .threeByThree(w, w, stride: 2, name: "down1", rng: &rng)
        rb2 = ResBlock(w, w2, name: "rb2", rng: &rng)
        down2 = .threeByThree(w2, w2, stride: 2, name: "down2", rng: &rng)
        rb3 = ResBlock(w2, w2, name: "rb3", rng: &rng)
        mid1 = ResBlock(w2, w2, name: "mid1", rng: &rng)
        mid2 = ResBlock(w2, w2, name: "mid2", rng: &rng)
        upRB1 = ResBlock(2 * w2, w2, name: "up_rb1", rng: &rng)
        upRB2 = ResBlock(2 * w2, w2, name: "up_rb2", rng: &rng)
        upConv1 = .threeByThree(w2, w2, name: "up_conv1", rng: &rng)
        upRB3 = ResBlock(2 * w2, w2, name: "up_rb3", rng: &rng)
        upRB4 = ResBlock(w2 + w, w2, name: "up_rb4", rng: &rng)
        upConv2 = .threeByThree(w2, w2, name: "up_conv2", rng: &rng)
        upRB5 = ResBlock(w2 + w, w, name: "up_rb5", rng: &rng)
        upRB6 = ResBlock(2 * w, w, name: "up_rb6", rng: &rng)
        gnOut = GroupNorm(groupCount: 8, channels: w, name: "gn_out")
        convOut = .threeByThree(w, channels, name: "conv_out", rng: &rng)
        semb = conditionsOnTarget ? NoiseEmbedding.silent(name: "semb", rng: &rng) : nil
        cemb = classCount > 0 ? ClassEmbedding(classCount: classCount, name: "cemb", rng: &rng) : nil
    }

    public var sampleShape: [Int] { [channels, imageSize, imageSize] }
    public var conditionsOnTarget: Bool { semb != nil }
    public var classCount: Int { cemb?.classCount ?? 0 }
    /// Not at half width (unet-xs), where it was slower: the unet-xs bench step 1.03-1.08 of the two passes', the
    /// ten-minute recipe's unconditional ECT phase 7.98-8.39 against 8.54-9.66 it/s. Likely (not profiled): its
    /// products are small beside the memory-bound kernels, and the teacher's unrecorded pass reuses buffers still
    /// in cache where a stacked batch keeps twice the activations.
    public var stacksConsistencyPairs: Bool { width >= 32 }
    public var outputWeight: Parameter { convOut.weight }

    public var parameters: [Parameter] {
        let blocks: [any Layer] = [temb, convIn, rb1, down1, rb2, down2, rb3, mid1, mid2, upRB1, upRB2, upConv1,
                                   upRB3, upRB4, upConv2, upRB5, upRB6, gnOut, convOut]
        return blocks.flatMap(\.parameters) + (semb?.parameters ?? []) + (cemb?.parameters ?? [])
    }

    public func callAsFunction(_ scaledInput: Tensor, sigma: Tensor, target: Tensor?, labels: [Int]?) -> Tensor {
        let e = timeEmbedding(temb, semb, cemb, sigma: sigma, target: target, labels: labels).silu()   // shared by every ResBlock
        let h0 = convIn(scaledInput)                 // s0 32x28x28
        let h1 = rb1(h0, e)                          // s1 32x28x28
        let h2 = down1(h1)                           // s2 32x14x14
        let h3 = rb2(h2, e)                          // s3 64x14x14
        let h4 = down2(h3)                           // s4 64x7x7
        let h5 = rb3(h4, e)                          // s5 64x7x7
        let m = mid2(mid1(h5, e), e)
        var u = upRB1(cat(m, h5), e)
        u = upRB2(cat(u, h4), e)
        u = upConv1(u.upsampledNearest2x())          // 14x14
        u = upRB3(cat(u, h3), e)
        u = upRB4(cat(u, h2), e)
        u = upConv2(u.upsampledNearest2x())          // 28x28
        u = upRB5(cat(u, h1), e)
        u = upRB6(cat(u, h0), e)
        return convOut(gnOut.silu(u))
    }

    private func cat(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.concatenate([a, b], axis: 1) }
}
