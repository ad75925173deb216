// Fréchet distance between Gaussians fitted to two sets of feature vectors (the FID formula).
import CKTensor

/// Fréchet distance between N(mu_a, S_a) and N(mu_b, S_b) fitted to (N, D) and (M, D) feature sets:
/// |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)) (Dowson & Landau 1982; Heusel et al. 2017).
/// Means and covariances are in float64; covariances are unbiased (divide by N - 1), as numpy's `cov`.
public func frechetDistance(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.rank == 2 && b.rank == 2 && a.shape[1] == b.shape[1],
                 "frechetDistance: need (N, D) and (M, D) features, got \(a.shape) vs \(b.shape)")
    precondition(a.shape[0] >= 2 && b.shape[0] >= 2, "frechetDistance: need at least 2 samples per set, got \(a.shape) vs \(b.shape)")
    let (muA, covA) = meanAndCovariance(a), (muB, covB) = meanAndCovariance(b)
    return frechetDistance(meanA: muA, covarianceA: covA, meanB: muB, covarianceB: covB)
}

/// The closed form for given moments; covariances are D x D row-major, symmetric positive semi-definite.
/// tr((S_a S_b)^(1/2)) = tr((R S_b R)^(1/2)) with R = S_a^(1/2): both square roots are of symmetric
/// matrices, taken by Jacobi eigendecomposition with negative round-off eigenvalues clamped to 0.
public func frechetDistance(meanA: [Double], covarianceA: [Double], meanB: [Double], covarianceB: [Double]) -> Double {
    let d = meanA.count
    precondition(meanB.count == d && covarianceA.count == d * d && covarianceB.count == d * d,
                 "frechetDistance: means \(meanA.count), \(meanB.count) and covariances \(covarianceA.count), \(covarianceB.count)")
    var meanTerm = 0.0, traceA = 0.0, traceB = 0.0
    for i in 0..<d {
        let e = meanA[i] - meanB[i]
        meanTerm += e * e
        traceA += covarianceA[i * d + i]; traceB += covarianceB[i * d + i]
    }
    let r = symmetricSquareRoot(covarianceA, d)
    let m = multiply(multiply(r, covarianceB, d), r, d)
    let (eigenvalues, _) = jacobiEigen(symmetrized(m, d), d)
    let traceSqrt = eigenvalues.reduce(0) { $0 + max($1, 0).squareRoot() }
    return meanTerm + traceA + traceB - 2 * traceSqrt
}

/// Per-column mean and the unbiased covariance (D x D) of (N, D) rows.
public func meanAndCovariance(_ x: Tensor) -> (mean: [Double], covariance: [Double]) {
    let n = x.shape[0], d = x.shape[1]
    var mean = [Double](repeating: 0, count: d)
    for i in 0..<n { for j in 0..<d { mean[j] += Double(x.storage[i * d + j]) } }
    for j in 0..<d { mean[j] /= Double(n) }
    var cov = [Double](repeating: 0, count: d * d), row = [Double](repeating: 0, count: d)
    for i in 0..<n {
        for j in 0..<d { row[j] = Double(x.storage[i * d + j]) - mean[j] }
        for p in 0..<d { let rp = row[p]; for q in p..<d { cov[p * d + q] += rp * row[q] } }
    }
    for p in 0..<d { for q in p..<d { cov[p * d + q] /= Double(n - 1); cov[q * d + p] = cov[p * d + q] } }
    return (mean, cov)
}

// MARK: - Symmetric linear algebra (float64, row-major D x D)

/// V diag(sqrt(max(lambda, 0))) V^T for symmetric PSD `s`.
func symmetricSquareRoot(_ s: [Double], _ d: Int) -> [Double] {
    let (lambda, v) = jacobiEigen(s, d)                 // v: columns are eigenvectors
    var out = [Double](repeating: 0, count: d * d)
    for k in 0..<d {
        let root = max(lambda[k], 0).squareRoot()
        if root == 0 { continue }
        for i in 0..<d {
            let vik = v[i * d + k] * root
            for j in 0..<d { out[i * d + j] += vik * v[j * d + k] }
        }
    }
    return out
}

/// Cyclic Jacobi eigenvalue iteration for a symmetric matrix: eigenvalues and the eigenvectors as the
/// columns of V (A = V diag(lambda) V^T). Sweeps until the off-diagonal mass is negligible.
/// Reference: Golub & Van Loan, Matrix Computations, section 8.5 (symmetric Schur rotations).
public func jacobiEigen(_ matrix: [Double], _ d: Int) -> (eigenvalues: [Double], vectors: [Double]) {
    var a = matrix, v = [Double](repeating: 0, count: d * d)
    for i in 0..<d { v[i * d + i] = 1 }
    var scale = 0.0
    for x in a { scale += x * x }
    let tolerance = 1e-30 * max(scale, 1e-300)
    for _ in 0..<100 {
        var off = 0.0
        for p in 0..<d { for q in (p + 1)..<max(p + 1, d) { off += a[p * d + q] * a[p * d + q] } }
        if off <= tolerance { break }
        for p in 0..<d {
            for q in (p + 1)..<max(p + 1, d) {
                let apq = a[p * d + q]
                if apq == 0 { continue }
                // Rotation angle zeroing a[p][q]: tau = (a_qq - a_pp) / (2 a_pq), t = tan(theta) (smaller root).
                let tau = (a[q * d + q] - a[p * d + p]) / (2 * apq)
                let t = (tau >= 0 ? 1.0 : -1.0) / (abs(tau) + (1 + tau * tau).squareRoot())
                let c = 1 / (1 + t * t).squareRoot(), s = t * c
                for k in 0..<d {                      // A <- A J (columns p, q)
                    let akp = a[k * d + p], akq = a[k * d + q]
                    a[k * d + p] = c * akp - s * akq
                    a[k * d + q] = s * akp + c * akq
                }
                for k in 0..<d {                      // A <- J^T A (rows p, q)
                    let apk = a[p * d + k], aqk = a[q * d + k]
                    a[p * d + k] = c * apk - s * aqk
                    a[q * d + k] = s * apk + c * aqk
                }
                a[p * d + q] = 0; a[q * d + p] = 0
                for k in 0..<d {                      // V <- V J
                    let vkp = v[k * d + p], vkq = v[k * d + q]
                    v[k * d + p] = c * vkp - s * vkq
                    v[k * d + q] = s * vkp + c * vkq
                }
            }
        }
    }
    return ((0..<d).map { a[$0 * d + $0] }, v)
}

func multiply(_ x: [Double], _ y: [Double], _ d: Int) -> [Double] {
    var out = [Double](repeating: 0, count: d * d)
    for i in 0..<d { for k in 0..<d { let xik = x[i * d + k]; if xik == 0 { continue }; for j in 0..<d { out[i * d + j] += xik * y[k * d + j] } } }
    return out
}

func symmetrized(_ m: [Double], _ d: Int) -> [Double] {
    var out = m
    for i in 0..<d { for j in 0..<d { out[i * d + j] = (m[i * d + j] + m[j * d + i]) / 2 } }
    return out
}
