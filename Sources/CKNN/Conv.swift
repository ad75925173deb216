// 2-D convolution layer (NCHW) over the Conv2D op; PyTorch weight layout (out, in, kH, kW).
import CKTensor

public struct Conv2D: Layer {
    public let weight: Parameter      // (out, in, k, k)
    public let bias: Parameter        // (out)
    public let stride: Int, padding: Int

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                name: String, rng: inout some RandomNumberGenerator) {
        let fanIn = inputChannels * kernelSize * kernelSize
        weight = Parameter(name: join(name, "weight"),
                           value: uniformInit(shape: [outputChannels, inputChannels, kernelSize, kernelSize], fanIn: fanIn, rng: &rng))
        bias = Parameter(name: join(name, "bias"), value: uniformInit(shape: [outputChannels], fanIn: fanIn, rng: &rng))
        self.stride = stride
        self.padding = padding
    }

    public var parameters: [Parameter] { [weight, bias] }

    /// x: (N, in, H, W) -> (N, out, Ho, Wo)
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight: weight.value, bias: bias.value, stride: stride, padding: padding)
    }

    /// The same plus sampleBias (N, out), each value over its sample's whole output plane, added as the
    /// output is written.
    public func callAsFunction(_ x: Tensor, sampleBias: Tensor) -> Tensor {
        x.conv2d(weight: weight.value, bias: bias.value, sampleBias: sampleBias, stride: stride, padding: padding)
    }
}

extension Conv2D {
    /// 3x3 convolution with padding 1 (the U-Net's workhorse).
    public static func threeByThree(_ cin: Int, _ cout: Int, stride: Int = 1, name: String,
                                    rng: inout some RandomNumberGenerator) -> Conv2D {
        Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 3, stride: stride, padding: 1, name: name, rng: &rng)
    }
}
