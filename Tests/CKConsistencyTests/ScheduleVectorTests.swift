// Schedules, scalings and losses against the independent vectors in shared/vectors.
import XCTest
import CKTensor
import CKConsistency
import CKTestSupport

final class ScheduleVectorTests: XCTestCase {
    func testKarrasSigmas() throws {
        let v = try Vectors.load("karras_sigmas.json")
        let params = try v.dict("params")
        // The file's rel is for float32 ports; karrasSigmas builds in Double and is held to float64's 1e-12.
        let rtol = try min(v.dict("tolerance").double("rel"), 1e-12)
        for c in try v.dicts("cases") {
            let n = try c.int("N")
            let got = try karrasSigmas(count: n, sigmaMin: params.double("sigma_min"), sigmaMax: params.double("sigma_max"),
                                       rho: params.double("rho"))
            for (g, w) in try checkedZip(got, c.doubles("sigmas"), "N=\(n) sigmas") { assertClose(g, w, atol: 0, rtol: rtol, "N=\(n)") }
        }
    }

    func testScalings() throws {
        let v = try Vectors.load("cm_scalings.json")
        let params = try v.dict("params"), tol = try v.dict("tolerance")
        let p = try Preconditioning(sigmaData: Float(params.double("sigma_data")), sigmaMin: Float(params.double("sigma_min")))
        let atol = try Float(tol.double("abs")), rtol = try Float(tol.double("rel"))
        let formulas: [(key: String, f: (Float) -> Float)] = [
            ("cm_c_skip", p.cSkip), ("cm_c_out", p.cOut), ("c_in", p.cIn), ("c_noise", p.cNoise),
            ("edm_c_skip", p.edmCSkip), ("edm_c_out", p.edmCOut),
        ]
        let columns = try v.columns(["sigma"] + formulas.map(\.key))
        let sigma = columns[0].map(Float.init)
        for (formula, want) in try checkedZip(formulas, columns.dropFirst(), "formulas") {
            assertClose(sigma.map(formula.f), want.map(Float.init), atol: atol, rtol: rtol, formula.key)
        }
        XCTAssertEqual(p.cSkip(p.sigmaMin), 1)      // boundary condition holds exactly
        XCTAssertEqual(p.cOut(p.sigmaMin), 0)
    }

    func testCurriculum() throws {
        let v = try Vectors.load("ict_curriculum.json")
        let tolerance = try v.string("tolerance")
        XCTAssertEqual(tolerance, "exact", "the curriculum is integer arithmetic; this test compares exactly")
        let params = try v.dict("params")
        let c = try ICTCurriculum(totalSteps: params.int("K"), s0: params.int("s0"), s1: params.int("s1"))
        XCTAssertEqual(c.stageLength, try v.int("K_prime"))
        for (k, n) in try checkedZip(v.ints("k"), v.ints("N"), "k and N") { XCTAssertEqual(c.pointCount(atStep: k), n, "N(\(k))") }
    }

    func testLognormalPairProbabilitiesAndLambda() throws {
        let v = try Vectors.load("ict_lognormal.json")
        let tol = try v.dict("tolerance"), atol = try tol.double("abs"), rtol = try tol.double("rel")
        let params = try v.dict("params")
        for c in try v.dicts("cases") {
            let n = try c.int("N")
            let table = try SigmaPairTable(pointCount: n, pMean: params.double("P_mean"), pStd: params.double("P_std"))
            // The table builds on the default Karras grid; the file's pairs are over the grid of its params.
            XCTAssertEqual(table.sigmas, try karrasSigmas(count: n, sigmaMin: params.double("sigma_min"),
                                                          sigmaMax: params.double("sigma_max"), rho: params.double("rho")))
            let columns = try c.columns(["probabilities", "lambda"])
            for (g, w) in try checkedZip(table.probabilities, columns[0], "N=\(n) probabilities") { assertClose(g, w, atol: atol, rtol: rtol, "p") }
            for (g, w) in try checkedZip(table.lambdas, columns[1], "N=\(n) lambda") { assertClose(g, w, atol: atol, rtol: rtol, "lambda") }
        }
    }

    func testPairSamplingFollowsProbabilities() {
        let table = SigmaPairTable(pointCount: 11)
        var rng = SplitMix64(seed: 3)
        var counts = [Int](repeating: 0, count: table.pairCount)
        let draws = 200_000
        for _ in 0..<draws { counts[table.samplePair(rng: &rng)] += 1 }
        for (count, p) in zip(counts, table.probabilities) {
            // binomial standard error; 5 sigma
            XCTAssertEqual(Double(count) / Double(draws), p, accuracy: 5 * (p * (1 - p) / Double(draws)).squareRoot() + 1e-9)
        }
    }

    func testRobustLosses() throws {
        let v = try Vectors.load("robust_losses.json")
        let rtol = try Float(v.dict("tolerance").double("rel"))
        for c in try v.dicts("cases") {
            let d = try c.int("d"), cc = try Float(c.double("c"))
            let xy = try c.columns(["x", "y"])
            try checkSameLength("\(c.path): d and the length of x", d, xy[0].count)
            let diff = Tensor(shape: [1, d], storage: xy[0].map(Float.init)) - Tensor(shape: [1, d], storage: xy[1].map(Float.init))
            assertClose(pseudoHuber(diff, c: cc).scalar, try Float(c.double("pseudo_huber_sum")), atol: 0, rtol: rtol, "pseudoHuber d=\(d)")
            assertClose(pseudoHuberMean(diff, c: cc).scalar, try Float(c.double("pseudo_huber_mean")), atol: 0, rtol: rtol, "pseudoHuberMean")
            assertClose(cauchy(diff, c: cc).scalar, try Float(c.double("cauchy_mean")), atol: 0, rtol: rtol, "cauchy")
        }
        for c in try v.dicts("ict_c") {
            let d = try c.int("d")
            // Kept at the former 1e-5 where that is tighter than the file's bound for whole losses.
            assertClose(ictHuberC(sampleSize: d), try Float(c.double("c")), atol: 0, rtol: min(rtol, 1e-5), "ict c d=\(d)")
        }
    }

    func testLossGradients() {
        gradCheck(shapes: [[3, 4]]) { pseudoHuber($0[0], c: 0.03) }
        gradCheck(shapes: [[3, 4]]) { cauchy($0[0], c: 0.5) }
        gradCheck(shapes: [[3, 4]]) { pseudoHuber($0[0], c: 0) }
    }

    /// With c = 0 the loss is the norm of the difference, which has a kink at 0: a sample whose student and
    /// target agree exactly (guided ECT's no-class rows at its first step) gets the subgradient 0, not NaN.
    func testPseudoHuberAtZeroDifferenceHasAFiniteGradient() {
        let diff = Tensor(shape: [2, 3], storage: [0, 0, 0, 1, -2, 2]).trackingGradients()
        let g = Tape.gradients(of: pseudoHuber(diff, c: 0).sum(), wrt: [diff])[0]
        XCTAssertEqual(Array(g.storage[0..<3]), [0, 0, 0])
        assertClose(Array(g.storage[3..<6]), [1.0 / 3, -2.0 / 3, 2.0 / 3], atol: 1e-6, "x / |x| for the other sample")
    }

    func testStepListValidation() {
        XCTAssertThrowsError(try validateSigmas([]))
        XCTAssertThrowsError(try validateSigmas([80, 80]))
        XCTAssertThrowsError(try validateSigmas([0.8, 2]))
        XCTAssertThrowsError(try validateSigmas([100]))
        XCTAssertThrowsError(try validateSigmas([80, 0.001]))
        XCTAssertNoThrow(try validateSigmas([80, 2, 0.8, 0.2]))
        for steps in 1...8 { XCTAssertNoThrow(try validateSigmas(defaultSigmas(steps: steps)), "default \(steps)") }
    }
}
