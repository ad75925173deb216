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

    /// A freshly initialised network (PyTorch's default init scheme), seeded.
    public func make(rng: inout some RandomNumberGenerator) -> any Backbone {
        switch self {
        case .mlpToy: return MLPToy(rng: &rng)
        case .unetS: return UNetS(rng: &rng)
        }
    }
}
