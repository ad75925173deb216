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
    var w2 = [Double](repeating: 0, count: directions)
    w2.withUnsafeMutableBufferPointer { out in
        a.storage.withUnsafeBufferPointer { av in b.storage.withUnsafeBufferPointer { bv in theta.withUnsafeBufferPointer { th in
            Parallel.forEach(directions) { k in
                var pa = [Double](repeating: 0, count: n), pb = [Double](repeating: 0, count: n)
                pa.withUnsafeMutableBufferPointer { pa in pb.withUnsafeMutableBufferPointer { pb in
                    for i in 0..<n {
                        var sa = 0.0, sb = 0.0
                        for j in 0..<d {
                            let t = th[k * d + j]
                            sa += Double(av[i * d + j]) * t; sb += Double(bv[i * d + j]) * t
                        }
                        pa[i] = sa; pb[i] = sb
                    }
                } }
                pa.withUnsafeMutableBufferPointer { sortAscending($0) }
                pb.withUnsafeMutableBufferPointer { sortAscending($0) }
                var acc = 0.0
                pa.withUnsafeBufferPointer { pa in pb.withUnsafeBufferPointer { pb in
                    for i in 0..<n { let e = pa[i] - pb[i]; acc += e * e }
                } }
                out[k] = acc / Double(n)                // each k written by one thread only
            }
        } } }
    }
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

/// In-place ascending sort of doubles (no NaNs): quicksort with median-of-three pivots, the smaller side
/// first (O(log n) stack), insertion sort below 16 elements. A concrete, non-generic sort: the standard
/// library's generic `sort()` is several times slower in unoptimized (test) builds.
func sortAscending(_ v: UnsafeMutableBufferPointer<Double>) {
    guard v.count > 1 else { return }
    var stack: [(Int, Int)] = [(0, v.count - 1)]
    while let (lo0, hi0) = stack.popLast() {
        var lo = lo0, hi = hi0
        while hi - lo > 16 {
            let (i, j) = hoarePartition(v, lo, hi)
            // v[lo...j] <= pivot <= v[i...hi]: push the larger side, keep working on the smaller.
            if j - lo < hi - i { stack.append((i, hi)); hi = j } else { stack.append((lo, j)); lo = i }
        }
        if hi > lo {
            for k in (lo + 1)...hi {
                let t = v[k]
                var m = k
                while m > lo && v[m - 1] > t { v[m] = v[m - 1]; m -= 1 }
                v[m] = t
            }
        }
    }
}

/// One Hoare partition of v[lo...hi] around a median-of-three pivot. Returns (i, j) with
/// v[lo...j] <= pivot <= v[i...hi] and everything strictly between j and i equal to the pivot.
@inline(__always)
func hoarePartition(_ v: UnsafeMutableBufferPointer<Double>, _ lo: Int, _ hi: Int) -> (Int, Int) {
    let mid = lo + (hi - lo) / 2
    if v[mid] < v[lo] { v.swapAt(mid, lo) }
    if v[hi] < v[lo] { v.swapAt(hi, lo) }
    if v[hi] < v[mid] { v.swapAt(hi, mid) }
    let pivot = v[mid]
    var i = lo, j = hi
    while i <= j {
        while v[i] < pivot { i += 1 }
        while v[j] > pivot { j -= 1 }
        if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
    }
    return (i, j)
}
