// What the consistency algorithms need from a network: F(c_in x, sigma) and its parameters.
import CKTensor

/// A network F that sees the already-scaled input c_in(sigma) * x and the raw noise levels
/// (the embedding takes ln sigma itself). Preconditioning lives in CKConsistency.
public protocol Backbone: Layer {
    /// One sample's shape, e.g. [2] or [1, 28, 28].
    var sampleShape: [Int] { get }
    /// scaledInput: (N, sampleShape...), sigma: (N) -> (N, sampleShape...)
    func callAsFunction(_ scaledInput: Tensor, sigma: Tensor) -> Tensor
}

/// The networks `cmkit` can build by name.
public enum ModelName: String, CaseIterable, Sendable {
    case mlpToy = "mlp-toy"
    case unetS = "unet-s"
    case unetXS = "unet-xs"

    /// A freshly initialised network (PyTorch's default init scheme), seeded. `sampleShape` is (C, H, W)
    /// for unet-s (the reference is 1x28x28; other sizes must be divisible by 4) and [2] for mlp-toy.
    public func make(sampleShape: [Int]? = nil, rng: inout some RandomNumberGenerator) -> any Backbone {
        switch self {
        case .mlpToy: return MLPToy(rng: &rng)
        case .unetS, .unetXS:
            let shape = sampleShape ?? [1, 28, 28]
            return UNetS(channels: shape[0], imageSize: shape[1], width: self == .unetS ? 32 : 16, rng: &rng)
        }
    }

    /// Why this network cannot model samples of `shape`, or nil if it can.
    public func incompatibility(with shape: [Int]) -> String? {
        switch self {
        case .mlpToy:
            return shape == [2] ? nil : "mlp-toy models 2-D points, but the data has samples of shape \(shape); use --model unet-s or unet-xs"
        case .unetS, .unetXS:
            guard shape.count == 3, shape[1] == shape[2], shape[1] % 4 == 0, shape[1] >= 8 else {
                return "\(rawValue) needs square images whose side is a multiple of 4 (e.g. 1x28x28), but the data has \(shape)"
            }
            return nil
        }
    }
}
