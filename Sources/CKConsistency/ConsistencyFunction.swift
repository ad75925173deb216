// The consistency function f(x, sigma) = cSkip x + cOut F(cIn x, sigma) over any backbone, per-sample sigma.
import CKTensor
import CKNN

extension Preconditioning {
    /// f_theta(x, sigma) with the sigma_min-offset scalings (algorithms.md 1.1). x: (N, ...), sigma: N values.
    public func consistency(_ network: some Backbone, _ x: Tensor, sigma: [Float]) -> Tensor {
        let n = x.shape[0]
        precondition(sigma.count == n, "consistency: \(sigma.count) sigmas for a batch of \(n)")
        let cIn = perSample(sigma.map(cIn), rank: x.rank)
        let cSkip = perSample(sigma.map(cSkip), rank: x.rank)
        let cOut = perSample(sigma.map(cOut), rank: x.rank)
        let out = network(x * cIn, sigma: Tensor(shape: [n], storage: sigma))
        return cSkip * x + cOut * out
    }
}

/// Adds per-sample noise: x + sigma_b * z (sigma broadcast over each sample's elements).
public func addNoise(_ x: Tensor, _ z: Tensor, sigma: [Float]) -> Tensor {
    x + z * perSample(sigma, rank: x.rank)
}

/// A (N, 1, ..., 1) tensor that broadcasts one value per sample.
func perSample(_ values: [Float], rank: Int) -> Tensor {
    Tensor(shape: [values.count] + Array(repeating: 1, count: rank - 1), storage: values)
}
