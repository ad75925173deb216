// Sliced Wasserstein-2 distance between two equal-size point sets (shared/peers/README.md "Toy metrics").
import CKTensor

/// sqrt( mean over `directions` random unit directions theta of W2^2(theta·a, theta·b) ), in float64.
/// For equal-size 1-D samples W2^2 is the mean squared difference of the sorted projections.
/// Inputs are (N, D) (or (N, ...), flattened per sample), with the same N.
///
/// Directions are Gaussian vectors normalised to unit length. The reference draws them with numpy's
/// `default_rng(1234)`, which we cannot reproduce; here they come from `SplitMix64(seed: seed)`
/// (`normalDouble`, row by row), so values agree with the reference up to the Monte Carlo error of the
/// 256 directions, not bit for bit. The same seed gives the same directions for every call.
public func slicedWasserstein2(_ a: Tensor, _ b: Tensor, directions: Int = 256, seed: UInt64 = 1234) -> Double {
    precondition(a.rank >= 2 && b.rank >= 2 && a.shape.dropFirst() == b.shape.dropFirst() && a.shape[0] == b.shape[0],
                 "slicedWasserstein2: need two (N, D) sets of the same size, got \(a.shape) vs \(b.shape)")
    let n = a.shape[0], d = a.count / max(1, n)
    precondition(n > 0 && directions > 0, "slicedWasserstein2: \(n) points, \(directions) directions")
    let theta = unitDirections(count: directions, dimension: d, seed: seed)
    let av = a.storage.map(Double.init), bv = b.storage.map(Double.init)
    var w2 = [Double](repeating: 0, count: directions)
    w2.withUnsafeMutableBufferPointer { out in Parallel.forEach(directions) { k in
        let t = theta[(k * d)..<((k + 1) * d)]
        func project(_ x: [Double]) -> [Double] {
            (0..<n).map { i in
                var s = 0.0
                for (j, tj) in t.enumerated() { s += x[i * d + j] * tj }
                return s
            }.sorted()
        }
        let pa = project(av), pb = project(bv)
        var acc = 0.0
        for i in 0..<n { let e = pa[i] - pb[i]; acc += e * e }
        out[k] = acc / Double(n)                    // each k written by one thread only
    } }
    return (w2.reduce(0, +) / Double(directions)).squareRoot()
}

/// `count` unit vectors of `dimension` (row-major), Gaussian then normalised, from SplitMix64(seed:).
public func unitDirections(count: Int, dimension d: Int, seed: UInt64) -> [Double] {
    var rng = SplitMix64(seed: seed)
    var theta = [Double](repeating: 0, count: count * d)
    for k in 0..<count {
        var norm = 0.0
        repeat {
            norm = 0
            for j in 0..<d { let g = rng.normalDouble(); theta[k * d + j] = g; norm += g * g }
        } while norm == 0
        let inv = 1 / norm.squareRoot()
        for j in 0..<d { theta[k * d + j] *= inv }
    }
    return theta
}
