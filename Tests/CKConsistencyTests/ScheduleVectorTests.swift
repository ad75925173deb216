// Schedules, scalings and losses against the independent vectors in shared/vectors.
import XCTest
import CKTensor
import CKConsistency
import CKTestSupport

final class ScheduleVectorTests: XCTestCase {
    func testKarrasSigmas() throws {
        let v = try Vectors.load("karras_sigmas.json")
        let cases = v.dicts("cases")
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let want = c.doubles("sigmas"), got = karrasSigmas(count: c.int("N"))
            XCTAssertEqual(got.count, want.count)
            for (g, w) in zip(got, want) { assertClose(g, w, atol: 0, rtol: 1e-12, "N=\(c.int("N"))") }
        }
    }

    func testScalings() throws {
        let v = try Vectors.load("cm_scalings.json")
        let p = Preconditioning()
        let tol = v.dict("tolerance"), atol = Float(tol.double("abs")), rtol = Float(tol.double("rel"))
        let sigma = v.doubles("sigma").map(Float.init)
        assertClose(sigma.map(p.cSkip), v.doubles("cm_c_skip").map(Float.init), atol: atol, rtol: rtol, "cSkip")
        assertClose(sigma.map(p.cOut), v.doubles("cm_c_out").map(Float.init), atol: atol, rtol: rtol, "cOut")
        assertClose(sigma.map(p.cIn), v.doubles("c_in").map(Float.init), atol: atol, rtol: rtol, "cIn")
        assertClose(sigma.map(p.cNoise), v.doubles("c_noise").map(Float.init), atol: atol, rtol: rtol, "cNoise")
        assertClose(sigma.map(p.edmCSkip), v.doubles("edm_c_skip").map(Float.init), atol: atol, rtol: rtol, "edmCSkip")
        assertClose(sigma.map(p.edmCOut), v.doubles("edm_c_out").map(Float.init), atol: atol, rtol: rtol, "edmCOut")
        XCTAssertEqual(p.cSkip(0.002), 1)      // boundary condition holds exactly
        XCTAssertEqual(p.cOut(0.002), 0)
    }

    func testCurriculum() throws {
        let v = try Vectors.load("ict_curriculum.json")
        let params = v.dict("params")
        let c = ICTCurriculum(totalSteps: params.int("K"), s0: params.int("s0"), s1: params.int("s1"))
        XCTAssertEqual(c.stageLength, v.int("K_prime"))
        let ks = v.doubles("k").map(Int.init), ns = v.doubles("N").map(Int.init)
        XCTAssertEqual(ks.count, 15)
        for (k, n) in zip(ks, ns) { XCTAssertEqual(c.pointCount(atStep: k), n, "N(\(k))") }
    }

    func testLognormalPairProbabilitiesAndLambda() throws {
        let v = try Vectors.load("ict_lognormal.json")
        let tol = v.dict("tolerance")
        for c in v.dicts("cases") {
            let table = SigmaPairTable(pointCount: c.int("N"))
            for (g, w) in zip(table.probabilities, c.doubles("probabilities")) { assertClose(g, w, atol: tol.double("abs"), rtol: tol.double("rel"), "p") }
            for (g, w) in zip(table.lambdas, c.doubles("lambda")) { assertClose(g, w, atol: tol.double("abs"), rtol: tol.double("rel"), "lambda") }
            XCTAssertEqual(table.pairCount, c.doubles("probabilities").count)
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
        let rtol = Float(v.dict("tolerance").double("rel"))
        for c in v.dicts("cases") {
            let d = c.int("d"), cc = Float(c.double("c"))
            let diff = Tensor(shape: [1, d], storage: c.doubles("x").map(Float.init)) - Tensor(shape: [1, d], storage: c.doubles("y").map(Float.init))
            assertClose(pseudoHuber(diff, c: cc).scalar, Float(c.double("pseudo_huber_sum")), atol: 0, rtol: rtol, "pseudoHuber d=\(d)")
            assertClose(pseudoHuberMean(diff, c: cc).scalar, Float(c.double("pseudo_huber_mean")), atol: 0, rtol: rtol, "pseudoHuberMean")
            assertClose(cauchy(diff, c: cc).scalar, Float(c.double("cauchy_mean")), atol: 0, rtol: rtol, "cauchy")
        }
        for c in v.dicts("ict_c") {
            assertClose(ictHuberC(sampleSize: c.int("d")), Float(c.double("c")), atol: 0, rtol: 1e-5, "ict c d=\(c.int("d"))")
        }
    }

    func testLossGradients() {
        gradCheck(shapes: [[3, 4]]) { pseudoHuber($0[0], c: 0.03) }
        gradCheck(shapes: [[3, 4]]) { cauchy($0[0], c: 0.5) }
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
