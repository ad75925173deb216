// What the consistency algorithms need from a network: F(c_in x, sigma) and its parameters.
import CKTensor

/// A network F that sees the already-scaled input c_in(sigma) * x and the raw noise levels
/// (the embedding takes ln sigma itself). Preconditioning lives in CKConsistency.
public protocol Backbone: Layer {
    /// One sample's shape, e.g. [2] or [1, 28, 28].
    var sampleShape: [Int] { get }
    /// Whether the network takes a second time, the jump target s (CTM's F(x, t, s)).
    var conditionsOnTarget: Bool { get }
    /// The weight of the last layer (CTM balances its two losses by their gradient norms there).
    var outputWeight: Parameter { get }
    /// Classes a class-conditional network knows (0: unconditional). Labels are 0..<classCount, and
    /// classCount itself for "no class".
    var classCount: Int { get }
    /// Whether a consistency pair's student and teacher run through this network as one stacked batch
    /// (CKConsistency/ConsistencyPairs.swift) rather than in two passes.
    var stacksConsistencyPairs: Bool { get }
    /// scaledInput: (N, sampleShape...), sigma: (N), target: (N) exactly when `conditionsOnTarget`,
    /// labels: N labels or nil (a conditional network then takes every row as "no class") -> (N, sampleShape...)
    func callAsFunction(_ scaledInput: Tensor, sigma: Tensor, target: Tensor?, labels: [Int]?) -> Tensor
}

extension Backbone {
    /// Stacked by default: one product per layer instead of two, measured faster on mlp-toy (0.90 of the step),
    /// unet-s (0.92) and latent-net (0.96) at two threads.
    public var stacksConsistencyPairs: Bool { true }

    public func callAsFunction(_ scaledInput: Tensor, sigma: Tensor, target: Tensor?) -> Tensor {
        self(scaledInput, sigma: sigma, target: target, labels: nil)
    }

    public func callAsFunction(_ scaledInput: Tensor, sigma: Tensor) -> Tensor {
        self(scaledInput, sigma: sigma, target: nil, labels: nil)
    }
}

/// The embedding every block sees: temb(sigma), plus semb(target) for a two-time network, plus the class
/// vector of each row for a class-conditional one.
func timeEmbedding(_ temb: NoiseEmbedding, _ semb: NoiseEmbedding?, _ cemb: ClassEmbedding?, sigma: Tensor, target: Tensor?,
                   labels: [Int]?) -> Tensor {
    var e: Tensor
    switch (semb, target) {
    case (nil, nil): e = temb(sigma: sigma)
    case (let semb?, let target?): e = temb(sigma: sigma) + semb(sigma: target)
    case (nil, _?): preconditionFailure("a target time was given to a network without a second time embedding")
    case (_?, nil): preconditionFailure("a two-time (CTM) network needs the target time s")
    }
    switch (cemb, labels) {
    case (nil, nil): return e
    case (let cemb?, let labels?): return e + cemb(labels)
    case (let cemb?, nil): return e + cemb(Array(repeating: cemb.nullLabel, count: sigma.count))
    case (nil, _?): preconditionFailure("class labels were given to a network that is not class-conditional")
    }
}

/// The networks `cmkit` can build by name.
public enum ModelName: String, CaseIterable, Sendable {
    case mlpToy = "mlp-toy"
    case unetS = "unet-s"
    case unetXS = "unet-xs"
    /// Latent CT's network: NSLN blocks at the latent resolution.
    case latentNet = "latent-net"
    /// The same with GroupNorm(8), for the NSLN ablation.
    case latentNetGN = "latent-net-gn"

    /// A freshly initialised network (PyTorch's default init scheme), seeded. `sampleShape` is (C, H, W)
    /// for unet-s (the reference is 1x28x28; other sizes must be divisible by 4) and [2] for mlp-toy.
    /// `conditionsOnTarget` adds CTM's second time embedding (`semb`).
    /// `classCount` > 0 adds a class embedding (`cemb`).
    public func make(sampleShape: [Int]? = nil, conditionsOnTarget: Bool = false, classCount: Int = 0,
                     rng: inout some RandomNumberGenerator) -> any Backbone {
        switch self {
        case .mlpToy: return MLPToy(conditionsOnTarget: conditionsOnTarget, classCount: classCount, rng: &rng)
        case .unetS, .unetXS:
            let shape = sampleShape ?? [1, 28, 28]
            return UNetS(channels: shape[0], imageSize: shape[1], width: self == .unetS ? 32 : 16,
                         conditionsOnTarget: conditionsOnTarget, classCount: classCount, rng: &rng)
        case .latentNet, .latentNetGN:
            let shape = sampleShape ?? [4, 7, 7]
            return LatentNet(channels: shape[0], side: shape[1], norm: self == .latentNet ? .nonScalingLayerNorm : .groupNorm,
                             conditionsOnTarget: conditionsOnTarget, classCount: classCount, rng: &rng)
        }
    }

    /// Why this network cannot model samples of `shape`, or nil if it can.
    public func incompatibility(with shape: [Int]) -> String? {
        switch self {
        case .mlpToy:
            return shape == [2] ? nil : "mlp-toy models 2-D points, but the data has samples of shape \(shape); use unet-s or unet-xs"
        case .unetS, .unetXS:
            guard shape.count == 3, shape[1] == shape[2], shape[1] % 4 == 0, (8...1024).contains(shape[1]), (1...16).contains(shape[0]) else {
                return "\(rawValue) needs square images of 1 to 16 channels whose side is a multiple of 4 from 8 to 1024 "
                    + "(e.g. 1x28x28), but the data has \(shape)"
            }
            return nil
        case .latentNet, .latentNetGN:
            guard shape.count == 3, shape[1] == shape[2], (1...256).contains(shape[1]), (1...64).contains(shape[0]) else {
                return "\(rawValue) models square latents of 1 to 64 channels and side 1 to 256 (e.g. 4x7x7 from an autoencoder), "
                    + "but the data has \(shape)"
            }
            return nil
        }
    }

    /// The networks meant for latents (`--method lct` picks one by default).
    public var isLatentNetwork: Bool { self == .latentNet || self == .latentNetGN }
}
