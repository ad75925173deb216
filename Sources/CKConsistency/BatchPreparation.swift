// What every trainer does to a batch before its loss: style standardization of the clean data, then
// noise drawn and, with immiscible assignment, paired to the data (algorithms.md 5.2 and 4.2).
import CKTensor

/// Options shared by all trainers, so that no trainer copies the batch transforms.
public struct BatchTransforms: Sendable, Equatable {
    /// Band ratio of Batch Styles Standardization; nil or 0: off.
    public var bssRatio: Float? = nil
    public var assignment: NoiseAssignment = .off
    /// Latent CT's OT coupling uses squared L2; immiscible diffusion uses L2.
    public var squaredCost = false

    public init(bssRatio: Float? = nil, assignment: NoiseAssignment = .off, squaredCost: Bool = false) {
        self.bssRatio = bssRatio
        self.assignment = assignment
        self.squaredCost = squaredCost
    }

    /// Latent CT's OT coupling: the same exact solver as immiscible assignment, on squared L2 (algorithms.md 2.4).
    public static func otCoupling(bssRatio: Float? = nil) -> BatchTransforms {
        BatchTransforms(bssRatio: bssRatio, assignment: .exact, squaredCost: true)
    }

    /// The batch after BSS and its unit noise after assignment. With assignment off the noise is nil:
    /// the loss draws its own, so runs without these options are unchanged.
    public func apply(to x: Tensor, rng: inout some RandomNumberGenerator) -> (batch: Tensor, noise: Tensor?) {
        var batch = x
        if let r = bssRatio, r > 0, x.rank == 4 {
            batch = batchStyleStandardization(x, ratio: r, rng: &rng).images
        }
        guard assignment != .off else { return (batch, nil) }
        // Unit noise, never sigma-scaled; the data keeps its order (and labels), the noise is permuted.
        let z = Tensor.normal(like: batch, rng: &rng)
        guard let p = noiseAssignment(batch: batch, noise: z, mode: assignment, squaredCost: squaredCost) else { return (batch, z) }
        return (batch, reorderedRows(z, p))
    }
}
