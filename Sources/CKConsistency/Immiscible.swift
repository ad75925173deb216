// Immiscible noise assignment (Li et al. 2024) and latent CT's OT coupling: pair each data item with
// noise by an exact assignment over their distances, so the noise stays Gaussian per sample but each
// image is noised towards "its" nearby noise (algorithms.md 4.1, 2.4).
import CKTensor

public enum NoiseAssignment: String, CaseIterable, Sendable {
    case off
    /// L2 distances in float32 from the inputs as they are.
    case exact
    /// The paper's code: 0.1 x and 0.1 z rounded to binary16 first, L2 distances from those values.
    case quantized
}

/// Pairwise distances between the rows of x (B, ...) and z (B, ...): B x B, row-major, in Double.
/// ||x - z||^2 = ||x||^2 + ||z||^2 - 2 x.z with the cross terms from one GEMM.
public func pairwiseDistances(_ x: Tensor, _ z: Tensor, squared: Bool) -> [Double] {
    let b = x.shape[0]
    precondition(z.shape[0] == b && x.count == z.count, "pairwiseDistances: shapes \(x.shape) and \(z.shape)")
    let d = x.count / max(b, 1)
    let xm = x.detached().reshaped([b, d]), zm = z.detached().reshaped([b, d])
    // One BLAS thread: woken OpenBLAS workers keep spinning after the GEMM and slow the
    // single-threaded solver that follows (seen as 30% sched_yield in its profile).
    let cross = Parallel.withSerialBLAS { xm.matmul(zm, transposeOther: true) }     // (B, B)
    func norms(_ t: Tensor) -> [Double] {
        (0..<b).map { i in
            var acc = 0.0
            for k in 0..<d { let v = Double(t.storage[i * d + k]); acc += v * v }
            return acc
        }
    }
    let nx = norms(xm), nz = norms(zm)
    var out = [Double](repeating: 0, count: b * b)
    for i in 0..<b {
        for j in 0..<b {
            let s = max(0, nx[i] + nz[j] - 2 * Double(cross.storage[i * b + j]))
            out[i * b + j] = squared ? s : s.squareRoot()
        }
    }
    return out
}

/// 0.1 * x rounded to IEEE binary16 and back (the quantized assignment's inputs).
func quantizedForAssignment(_ t: Tensor) -> Tensor {
    t.map(HalfRounded())
}

struct HalfRounded: UnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Float(Float16(0.1 * x)) }
}

/// The permutation p of the noise batch for `batch` (data item a gets noise[p[a]]), or nil when off.
/// `squaredCost` selects latent CT's OT cost (squared L2) instead of immiscible diffusion's L2.
public func noiseAssignment(batch x: Tensor, noise z: Tensor, mode: NoiseAssignment, squaredCost: Bool = false) -> [Int]? {
    switch mode {
    case .off: return nil
    case .exact:
        return linearAssignment(cost: pairwiseDistances(x, z, squared: squaredCost), count: x.shape[0])
    case .quantized:
        let cost = pairwiseDistances(quantizedForAssignment(x), quantizedForAssignment(z), squared: squaredCost)
        return linearAssignment(cost: cost, count: x.shape[0])
    }
}

/// Rows of `noise` reordered so row a is noise[p[a]]; the data keeps its order (and its labels).
/// Also a gather: `p` may be any list of row indices.
public func reorderedRows(_ noise: Tensor, _ p: [Int]) -> Tensor {
    let per = noise.count / max(noise.shape[0], 1)
    return Tensor(shape: [p.count] + noise.shape.dropFirst()) { out in
        noise.storage.withUnsafeBufferPointer { src in
            for (a, j) in p.enumerated() { (out.baseAddress! + a * per).update(from: src.baseAddress! + j * per, count: per) }
        }
    }
}
