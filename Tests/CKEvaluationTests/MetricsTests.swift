// Sliced W2, MMD^2 and Fréchet distance against hand-derived and analytic values.
import CKDatasets
@testable import CKEvaluation
import CKTensor
import CKTestSupport
import Foundation
import XCTest

final class MetricsTests: XCTestCase {
    // MARK: - Sliced Wasserstein-2

    func testSlicedW2OfASampleWithItselfIsZero() {
        var rng = SplitMix64(seed: 1)
        let a = Toy2D.checkerboard.sample(count: 1024, rng: &rng)
        XCTAssertEqual(slicedWasserstein2(a, a), 0)
    }

    func testSlicedW2InOneDimensionIsTheExactW2() {
        // D = 1: every unit direction is +-1, so SW2 = W2. Sorted {0,1,2,3} vs sorted {1,3,5,7}:
        // differences 1, 2, 3, 4 -> mean square 30/4 -> sqrt 2.7386.
        let a = Tensor(shape: [4, 1], storage: [3, 0, 2, 1]), b = Tensor(shape: [4, 1], storage: [5, 1, 7, 3])
        assertClose(slicedWasserstein2(a, b, directions: 16), (30.0 / 4).squareRoot(), atol: 1e-12)
    }

    func testSlicedW2OfATranslationIsTheProjectedShift() {
        // b = a + delta: each projection moves by theta·delta and sorting keeps the order, so
        // SW2 = sqrt(mean_theta (theta·delta)^2) exactly; over uniform directions in 2-D that is |delta|/sqrt(2).
        var rng = SplitMix64(seed: 2)
        let a = Toy2D.eightGaussians.sample(count: 512, rng: &rng)
        let delta: (Float, Float) = (0.3, -0.4)                                   // |delta| = 0.5
        let b = Tensor(shape: a.shape, storage: a.storage.enumerated().map { $0.element + ($0.offset % 2 == 0 ? delta.0 : delta.1) })
        // Many directions: close to the analytic 0.5/sqrt(2). Monte Carlo error of mean cos^2 over 4000
        // directions: sqrt(1/8/4000) / 0.5 = 1.1% relative, 0.56% after the square root.
        assertClose(slicedWasserstein2(a, b, directions: 4000), 0.5 / 2.0.squareRoot(), atol: 0, rtol: 0.02)
        // 256 directions: the Monte Carlo error of mean cos^2 is sqrt(1/8/256) = 0.022 (4.4%), half that for the sqrt.
        assertClose(slicedWasserstein2(a, b), 0.5 / 2.0.squareRoot(), atol: 0, rtol: 0.08)
        // Exactly, with the documented directions: SplitMix64(seed: 1234), Gaussian pairs per row, normalised.
        var g = SplitMix64(seed: 1234)
        var meanSquare = 0.0
        for _ in 0..<256 {
            let t0 = g.normalDouble(), t1 = g.normalDouble(), norm = (t0 * t0 + t1 * t1).squareRoot()
            let p = (t0 * Double(delta.0) + t1 * Double(delta.1)) / norm
            meanSquare += p * p / 256
        }
        assertClose(slicedWasserstein2(a, b), meanSquare.squareRoot(), atol: 1e-6, rtol: 1e-5)
    }

    func testSlicedW2SeparatesDistributions() {
        var rng = SplitMix64(seed: 3)
        let a = Toy2D.checkerboard.sample(count: 2048, rng: &rng)
        let a2 = Toy2D.checkerboard.sample(count: 2048, rng: &rng)
        let g = Toy2D.eightGaussians.sample(count: 2048, rng: &rng)
        let same = slicedWasserstein2(a, a2), different = slicedWasserstein2(a, g)
        XCTAssertLessThan(same, 0.03, "noise floor at 2048 points")
        XCTAssertGreaterThan(different, 3 * same)
    }

    // MARK: - MMD^2

    func testSortAscending() {
        var rng = SplitMix64(seed: 8)
        for n in [0, 1, 2, 17, 1000] {
            var v = (0..<n).map { _ in Double(Int.random(in: 0..<50, using: &rng)) + rng.uniformDouble() * (n == 1000 ? 0 : 1) }
            let want = v.sorted()
            v.withUnsafeMutableBufferPointer { sortAscending($0) }
            XCTAssertEqual(v, want, "\(n) values")
        }
    }

    func testMMDHandComputed() {
        // 1-D: a = {0, 1}, b = {0, 2}. Pooled pair distances 1, 0, 2, 1, 1, 2 -> sorted 0 1 1 1 2 2 -> median h = 1.
        // k(d) = exp(-d^2 / 2). Sxx = k(1), Syy = k(2), Sxy = (k(0) + k(2) + k(1) + k(1)) / 4, so
        // MMD^2 = Sxx + Syy - 2 Sxy = e^-0.5 + e^-2 - (1 + e^-2 + 2 e^-0.5) / 2 = e^-2 / 2 - 1/2.
        let r = mmd2RBF(Tensor(shape: [2, 1], storage: [0, 1]), Tensor(shape: [2, 1], storage: [0, 2]))
        assertClose(r.bandwidth, 1, atol: 1e-12)
        assertClose(r.mmd2, exp(-2.0) / 2 - 0.5, atol: 1e-12)
    }

    func testMedianOfPairwiseDistances() {
        // {0, 1, 3}: distances 1, 3, 2 -> median 2 (odd count).
        assertClose(medianPairwiseDistance([0, 1, 3], count: 3, dimension: 1), 2, atol: 1e-12)
        // {0, 1, 3, 7}: 1, 3, 7, 2, 6, 4 -> sorted 1 2 3 4 6 7 -> (3 + 4) / 2 = 3.5 (numpy's median).
        assertClose(medianPairwiseDistance([0, 1, 3, 7], count: 4, dimension: 1), 3.5, atol: 1e-12)
        // 2-D, many ties and duplicates: against a full sort.
        var rng = SplitMix64(seed: 4)
        for count in [2, 3, 50, 301] {
            let pts = (0..<(2 * count)).map { _ in Double(Int.random(in: 0..<4, using: &rng)) }
            var d: [Double] = []
            for i in 0..<count { for j in (i + 1)..<count {
                d.append(((pts[2 * i] - pts[2 * j]) * (pts[2 * i] - pts[2 * j]) + (pts[2 * i + 1] - pts[2 * j + 1]) * (pts[2 * i + 1] - pts[2 * j + 1])).squareRoot())
            } }
            d.sort()
            let want = d.count % 2 == 1 ? d[d.count / 2] : (d[d.count / 2 - 1] + d[d.count / 2]) / 2
            assertClose(medianPairwiseDistance(pts, count: count, dimension: 2), want, atol: 1e-12, "\(count) points")
        }
    }

    func testMMDNearZeroForOneDistributionAndGrowsWithShift() {
        var rng = SplitMix64(seed: 5)
        let a = Toy2D.eightGaussians.sample(count: 1000, rng: &rng)
        let a2 = Toy2D.eightGaussians.sample(count: 1000, rng: &rng)
        // Identical sets: the unbiased estimate differs from 0 only through the excluded diagonal, O(1/N).
        XCTAssertEqual(mmd2RBF(a, a).mmd2, 0, accuracy: 2e-3)
        XCTAssertEqual(mmd2RBF(a, a2).mmd2, 0, accuracy: 2e-3)
        var last = mmd2RBF(a, a2).mmd2
        for shift: Float in [0.1, 0.3, 0.6] {
            let value = mmd2RBF(a, a2 + shift).mmd2
            XCTAssertGreaterThan(value, last + 1e-3, "shift \(shift)")
            last = value
        }
    }

    // MARK: - Fréchet distance

    func testFrechetDiagonalClosedForm() {
        // Diagonal covariances: |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)).
        let d = 5
        let mu1 = [0.0, 1, 2, -1, 0.5], mu2 = [1.0, 1, 0, 0, 0.5]
        let s1 = [1.0, 2, 0.5, 4, 0.1], s2 = [4.0, 2, 0.3, 1, 0.9]
        func diag(_ s: [Double]) -> [Double] { (0..<(d * d)).map { $0 % (d + 1) == 0 ? s[$0 / (d + 1)] : 0 } }
        var want = 0.0
        for j in 0..<d {
            let dm = mu1[j] - mu2[j], root = (s1[j] * s2[j]).squareRoot()
            want += dm * dm + s1[j] + s2[j] - 2 * root
        }
        assertClose(frechetDistance(meanA: mu1, covarianceA: diag(s1), meanB: mu2, covarianceB: diag(s2)), want, atol: 1e-10)
    }

    func testFrechetNonCommutingTwoByTwo() {
        // For 2x2, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) when M has non-negative eigenvalues (here M = S1 S2).
        let s1 = [2.0, 0.8, 0.8, 1.0], s2 = [0.5, -0.3, -0.3, 3.0]
        var m = [Double](repeating: 0, count: 4)
        for i in 0..<2 { for j in 0..<2 { for k in 0..<2 { m[2 * i + j] += s1[2 * i + k] * s2[2 * k + j] } } }
        let det: Double = m[0] * m[3] - m[1] * m[2], tr: Double = m[0] + m[3]
        let trSqrt = (tr + 2 * det.squareRoot()).squareRoot()
        let meanTerm = 1.0 * 1.0 + 2.0 * 2.0                                     // means (0, 0) and (1, -2)
        let traces: Double = (2 + 1) + (0.5 + 3)
        let want = meanTerm + traces - 2 * trSqrt
        assertClose(frechetDistance(meanA: [0, 0], covarianceA: s1, meanB: [1, -2], covarianceB: s2), want, atol: 1e-10)
    }

    func testFrechetFromSamples() {
        // x ~ N(mu, diag(s)) sampled; the estimate approaches the closed form.
        let d = 3, n = 40_000
        let mu1: [Float] = [0, 0.5, -1], mu2: [Float] = [0.5, 0.5, 0]
        let s1: [Float] = [1, 0.25, 2], s2: [Float] = [0.5, 1, 2]
        var rng = SplitMix64(seed: 6)
        func sample(_ mu: [Float], _ s: [Float]) -> Tensor {
            let z = Tensor.normal(shape: [n, d], rng: &rng)
            return Tensor(shape: [n, d], storage: z.storage.enumerated().map { mu[$0.offset % d] + s[$0.offset % d].squareRoot() * $0.element })
        }
        let a = sample(mu1, s1), b = sample(mu2, s2)
        var want = 0.0
        for j in 0..<d {
            let dm = Double(mu1[j] - mu2[j]), v1 = Double(s1[j]), v2 = Double(s2[j])
            want += dm * dm + v1 + v2 - 2 * (v1 * v2).squareRoot()
        }
        assertClose(frechetDistance(a, b), want, atol: 0.03)
        XCTAssertEqual(frechetDistance(a, a), 0, accuracy: 1e-9)
    }

    func testJacobiDecomposesASymmetricMatrix() {
        // A = V diag(lambda) V^T with orthonormal V, for a random symmetric 64 x 64 matrix.
        let d = 64
        var rng = SplitMix64(seed: 7)
        var a = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in i..<d { let v = rng.normalDouble(); a[i * d + j] = v; a[j * d + i] = v } }
        let (lambda, v) = jacobiEigen(a, d)
        var worstA = 0.0, worstI = 0.0
        for i in 0..<d {
            for j in 0..<d {
                var r = 0.0, o = 0.0
                for k in 0..<d { r += v[i * d + k] * lambda[k] * v[j * d + k]; o += v[k * d + i] * v[k * d + j] }
                worstA = max(worstA, abs(r - a[i * d + j])); worstI = max(worstI, abs(o - (i == j ? 1 : 0)))
            }
        }
        XCTAssertLessThan(worstA, 1e-10)
        XCTAssertLessThan(worstI, 1e-10)
        // Trace is preserved: sum lambda = sum a_ii.
        assertClose(lambda.reduce(0, +), (0..<d).map { a[$0 * d + $0] }.reduce(0, +), atol: 1e-9)
    }
}
