// Fully connected layer: y = x W^T + b (PyTorch layout, so checkpoints interoperate).
import CKTensor

public struct Linear: Layer {
    public let weight: Parameter       // (out, in)
    public let bias: Parameter         // (out)

    public init(inputSize: Int, outputSize: Int, name: String, rng: inout some RandomNumberGenerator) {
        weight = Parameter(name: join(name, "weight"), value: uniformInit(shape: [outputSize, inputSize], fanIn: inputSize, rng: &rng))
        bias = Parameter(name: join(name, "bias"), value: uniformInit(shape: [outputSize], fanIn: inputSize, rng: &rng))
    }

    public var parameters: [Parameter] { [weight, bias] }

    /// x: (N, in) -> (N, out)
    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight: weight.value, bias: bias.value) }
}
