// Unbiased MMD^2 with an RBF kernel and the median-heuristic bandwidth (shared/peers/README.md "Toy metrics").
import CKTensor
import Glibc

public struct MMDResult: Sendable, Equatable {
    /// Unbiased MMD^2 estimate (can be slightly negative).
    public var mmd2: Double
    /// The kernel bandwidth h used.
    public var bandwidth: Double
}

/// Unbiased MMD^2 (Gretton et al. 2012) between (N, D) and (M, D) point sets, in float64, with
/// k(x, y) = exp(-|x - y|^2 / (2 h^2)). Unless given, h is the median of all pairwise Euclidean distances
/// of the pooled N + M points (distinct pairs i < j; for an even count the mean of the two middle values,
/// as numpy's median). Within-set sums exclude the diagonal: sum_{i != j} k / (N (N - 1)).
public func mmd2RBF(_ a: Tensor, _ b: Tensor, bandwidth given: Double? = nil) -> MMDResult {
    precondition(a.rank >= 2 && b.rank >= 2 && a.shape.dropFirst() == b.shape.dropFirst(),
                 "mmd2RBF: need (N, D) and (M, D) sets, got \(a.shape) vs \(b.shape)")
    let n = a.shape[0], m = b.shape[0], d = a.count / max(1, n)
    precondition(n >= 2 && m >= 2, "mmd2RBF: need at least 2 points per set, got \(n) and \(m)")
    let x = a.storage.map(Double.init), y = b.storage.map(Double.init)
    let pooled = x + y, total = n + m
    let h = given ?? medianPairwiseDistance(pooled, count: total, dimension: d)
    precondition(h > 0, "mmd2RBF: bandwidth \(h); are all points identical?")
    let gamma = 1 / (2 * h * h)

    // Row sums of the three kernel blocks; rows are independent, so they run in parallel and are
    // added in row order afterwards (the same result on any thread count).
    func blockSum(_ p: [Double], _ np: Int, _ q: [Double], _ nq: Int, skipDiagonal: Bool) -> Double {
        var rows = [Double](repeating: 0, count: np)
        rows.withUnsafeMutableBufferPointer { out in
            p.withUnsafeBufferPointer { p in q.withUnsafeBufferPointer { q in
                Parallel.forEach(np) { i in
                    var s = 0.0
                    for j in 0..<nq where !(skipDiagonal && i == j) {
                        var dist2 = 0.0
                        for k in 0..<d { let e = p[i * d + k] - q[j * d + k]; dist2 += e * e }
                        s += exp(-gamma * dist2)
                    }
                    out[i] = s
                }
            } }
        }
        return rows.reduce(0, +)
    }
    let sxx = blockSum(x, n, x, n, skipDiagonal: true) / Double(n * (n - 1))
    let syy = blockSum(y, m, y, m, skipDiagonal: true) / Double(m * (m - 1))
    let sxy = blockSum(x, n, y, m, skipDiagonal: false) / Double(n * m)
    return MMDResult(mmd2: sxx + syy - 2 * sxy, bandwidth: h)
}

/// Median of the Euclidean distances over all pairs i < j of `count` points (row-major, `dimension` wide).
public func medianPairwiseDistance(_ points: [Double], count: Int, dimension d: Int) -> Double {
    precondition(count >= 2, "medianPairwiseDistance: need 2 points, got \(count)")
    let pairs = count * (count - 1) / 2
    // Squared distances: the square root is monotone, so it is taken only for the one or two middle values.
    var dist2 = [Double](repeating: 0, count: pairs)
    dist2.withUnsafeMutableBufferPointer { out in
        points.withUnsafeBufferPointer { p in
            Parallel.forEach(count - 1) { i in
                var o = i * (2 * count - i - 1) / 2          // pairs before row i
                for j in (i + 1)..<count {
                    var s = 0.0
                    for k in 0..<d { let e = p[i * d + k] - p[j * d + k]; s += e * e }
                    out[o] = s; o += 1
                }
            }
        }
    }
    return dist2.withUnsafeMutableBufferPointer { v -> Double in
        let upper = select(v, pairs / 2)
        if pairs % 2 == 1 { return upper.squareRoot() }
        // After selection everything left of pairs/2 is <= upper: the lower middle is their maximum.
        var lower = -Double.infinity
        for i in 0..<(pairs / 2) { lower = max(lower, v[i]) }
        return (lower.squareRoot() + upper.squareRoot()) / 2
    }
}

/// Quickselect (Hoare partition, median-of-three pivot): returns the k-th smallest value (0-based) and
/// leaves v[..<k] <= v[k] <= v[(k+1)...].
func select(_ v: UnsafeMutableBufferPointer<Double>, _ k: Int) -> Double {
    var lo = 0, hi = v.count - 1
    while hi > lo {
        let (i, j) = hoarePartition(v, lo, hi)
        // Now v[lo...j] <= pivot <= v[i...hi], and anything between j and i equals the pivot.
        if k <= j { hi = j } else if k >= i { lo = i } else { return v[k] }
    }
    return v[k]
}
