// The consistency function f(x, sigma) = cSkip x + cOut F(cIn x, sigma) over any backbone, per-sample sigma.
import CKTensor
import CKNN

extension Preconditioning {
    /// f_theta(x, sigma) with the sigma_min-offset scalings (algorithms.md 1.1). x: (N, ...), sigma: N values.
    public func consistency(_ network: some Backbone, _ x: Tensor, sigma: [Float]) -> Tensor {
        let n = x.shape[0]
        precondition(sigma.count == n, "consistency: \(sigma.count) sigmas for a batch of \(n)")
        let column = [n] + Array(repeating: 1, count: x.rank - 1)
        let cIn = Tensor(shape: column, storage: sigma.map(cIn))
        let cSkip = Tensor(shape: column, storage: sigma.map(cSkip))
        let cOut = Tensor(shape: column, storage: sigma.map(cOut))
        let out = network(x * cIn, sigma: Tensor(shape: [n], storage: sigma))
        return cSkip * x + cOut * out
    }
}

/// Adds per-sample noise: x + sigma_b * z (sigma broadcast over each sample's elements).
public func addNoise(_ x: Tensor, _ z: Tensor, sigma: [Float]) -> Tensor {
    let column = [x.shape[0]] + Array(repeating: 1, count: x.rank - 1)
    return x + z * Tensor(shape: column, storage: sigma)
}
