// Trainable parameters with stable dotted names, and the Layer protocol that lists them.
import CKTensor

/// A named trainable tensor. Its value is a graph leaf, so gradients with respect to it can be asked for.
/// The name (`down.1.conv0.weight`) is the safetensors key.
public final class Parameter {
    public let name: String
    public private(set) var value: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value.detached().trackingGradients()
    }

    public var shape: [Int] { value.shape }

    /// Replaces the values (same shape), keeping the parameter a graph leaf.
    public func assign(_ newValue: Tensor) {
        precondition(newValue.shape == value.shape, "assign \(name): shape \(newValue.shape) for \(value.shape)")
        value = newValue.detached().trackingGradients()
    }

    /// Makes the value a constant: ops stop computing gradients for it. For networks used only
    /// under stop-gradient weights (a teacher, CTM's target network), whose inputs may still need gradients.
    public func freeze() { value = value.detached() }

    /// In-place update of the values (the optimizer's path; no copy when the graph has been released).
    public func update(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        value.storage.withUnsafeMutableBufferPointer { body($0) }
    }
}

/// Anything that owns parameters, listed in a fixed order.
public protocol Layer {
    var parameters: [Parameter] { get }
}

extension Layer {
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Current values by name (for checkpoints and EMA copies).
    public var namedValues: [(String, Tensor)] { parameters.map { ($0.name, $0.value.detached()) } }
}

/// Joins a prefix and a name with a dot: `join("down.1", "weight") == "down.1.weight"`.
public func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

/// PyTorch's default initialisation for Linear and Conv: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for weight and bias.
func uniformInit(shape: [Int], fanIn: Int, rng: inout some RandomNumberGenerator) -> Tensor {
    let bound = 1 / Float(fanIn).squareRoot()
    return Tensor.uniform(shape: shape, low: -bound, high: bound, rng: &rng)
}
