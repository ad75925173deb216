// CTM's parametrization, gamma-sampling steps and teacher-length distribution against the vectors;
// the exact identity G(x, t, t) = x; the (t, u, s) ordering.
import XCTest
import CKTensor
import CKNN
import CKConsistency
import CKTestSupport

final class CTMVectorTests: XCTestCase {
    func testCoefficientsMatchVectors() throws {
        let v = try Vectors.load("ctm_coefficients.json")
        let tol = try v.dict("tolerance"), rtol = try Float(tol.double("rel")), atol = try Float(tol.double("abs"))
        let p = try preconditioning(v)
        for c in try v.dicts("coefficients") {
            let t = try Float(c.double("t")), s = try Float(c.double("s"))
            let (x, f) = p.ctmCoefficients(t: t, s: s)
            assertClose(x, try Float(c.double("coef_x")), atol: atol, rtol: rtol, "coef_x t=\(t) s=\(s)")
            assertClose(f, try Float(c.double("coef_F")), atol: atol, rtol: rtol, "coef_F t=\(t) s=\(s)")
            assertClose(p.cIn(t), try Float(c.double("c_in_t")), atol: atol, rtol: rtol, "c_in")
            assertClose(p.edmCSkip(t), try Float(c.double("edm_c_skip_t")), atol: atol, rtol: rtol, "edm c_skip")
            assertClose(p.edmCOut(t), try Float(c.double("edm_c_out_t")), atol: atol, rtol: rtol, "edm c_out")
        }
    }

    func testGammaStepsMatchVectors() throws {
        let v = try Vectors.load("ctm_coefficients.json")
        let tol = try v.dict("tolerance"), rtol = try Float(tol.double("rel")), atol = try Float(tol.double("abs"))
        let p = try preconditioning(v)
        for c in try v.dicts("gamma_sampling") {
            let gamma = try Float(c.double("gamma")), next = try Float(c.double("t_next"))
            let (jump, renoise) = p.gammaStep(gamma: gamma, next: next)
            assertClose(jump, try Float(c.double("s_jump")), atol: atol, rtol: rtol, "s' at gamma \(gamma), t_next \(next)")
            assertClose(renoise, try Float(c.double("renoise_std")), atol: atol, rtol: rtol, "re-noise std at gamma \(gamma), t_next \(next)")
        }
        // gamma 1 denoises fully: the jump lands on sigma_min.
        XCTAssertEqual(p.gammaStep(gamma: 1, next: 5).jump, p.sigmaMin)
    }

    func testHeunStepDistributionMatchesVectors() throws {
        let v = try Vectors.load("ctm_coefficients.json")
        // heunStepDistribution is Double: kept at the former float64 bounds where those are tighter than the file's.
        let tol = try v.dict("tolerance"), rtol = try min(tol.double("rel"), 1e-9), atol = try min(tol.double("abs"), 1e-12)
        for c in try v.dicts("heun_step_distribution") {
            let k = try c.int("max_steps")
            for (g, w) in try checkedZip(heunStepDistribution(maxSteps: k), c.doubles("probabilities"), "P(k) for K = \(k)") {
                assertClose(g, w, atol: atol, rtol: rtol, "K = \(k)")
            }
        }
    }

    private func preconditioning(_ v: VectorRecord) throws -> Preconditioning {
        let params = try v.dict("params")
        return try Preconditioning(sigmaData: Float(params.double("sigma_data")), sigmaMin: Float(params.double("sigma_min")))
    }

    func testJumpToItsOwnTimeIsTheIdentityExactly() {
        var rng = SplitMix64(seed: 3)
        let p = Preconditioning()
        for name in [ModelName.mlpToy, .unetXS] {
            let shape = name == .mlpToy ? [2] : [1, 12, 12]
            let network = name.make(sampleShape: shape, conditionsOnTarget: true, rng: &rng)
            // Make the s embedding live, so the identity cannot come from a silent embedding.
            for q in network.parameters where q.name.hasPrefix("semb") { q.assign(Tensor.normal(shape: q.shape, rng: &rng)) }
            let x = Tensor.normal(shape: [3] + shape, rng: &rng) * 7
            let t: [Float] = [80, 0.7, 0.002]
            let y = Tape.withoutRecording { p.ctmJump(network, x, t: t, s: t) }
            XCTAssertEqual(y.storage, x.storage, "\(name): G(x, t, t) must return x exactly")
            let moved = Tape.withoutRecording { p.ctmJump(network, x, t: t, s: [1, 0.1, 0.002]) }
            XCTAssertNotEqual(moved.storage, x.storage, "\(name): a real jump must change x")
        }
    }

    func testSilentSecondEmbeddingMakesTheStudentEqualTheTeacher() {
        var rng = SplitMix64(seed: 4)
        let teacher = ModelName.mlpToy.make(rng: &rng)
        let student = ModelName.mlpToy.make(conditionsOnTarget: true, rng: &rng)
        XCTAssertEqual(copyMatchingValues(from: teacher, to: student), teacher.parameters.count)
        XCTAssertEqual(student.parameters.count, teacher.parameters.count + 4)
        let x = Tensor.normal(shape: [5, 2], rng: &rng)
        let p = Preconditioning()
        let d = Tape.withoutRecording { p.edmDenoiser(teacher, x, sigma: [3, 3, 3, 3, 3]) }
        let g = Tape.withoutRecording { p.edmDenoiser(student, x, sigma: [3, 3, 3, 3, 3], target: [0.1, 1, 2, 0.5, 3]) }
        XCTAssertEqual(g.storage, d.storage)
    }

    func testTimesKeepSBelowUBelowTAndOneKPerBatch() {
        var rng = SplitMix64(seed: 9)
        var counts = [Int](repeating: 0, count: 18)
        for _ in 0..<4000 {
            let times = CTMTimes.draw(batchSize: 16, gridPoints: 18, rng: &rng)
            counts[times.k] += 1
            for (t, s) in zip(times.tIndex, times.sIndex) {
                XCTAssertGreaterThanOrEqual(t, 0)
                XCTAssertLessThanOrEqual(t + times.k, s)       // descending index: s <= u = grid[t + k] < t
                XCTAssertLessThanOrEqual(s, 17)
            }
        }
        let p = heunStepDistribution(maxSteps: 17)
        for k in [1, 9, 17] {
            XCTAssertEqual(Double(counts[k]) / 4000, p[k - 1], accuracy: 0.015, "P(k = \(k))")
        }
        // The uniform strategy: each k with probability 1/17.
        counts = [Int](repeating: 0, count: 18)
        for _ in 0..<4000 { counts[CTMTimes.draw(batchSize: 1, gridPoints: 18, strategy: .uniform, rng: &rng).k] += 1 }
        for k in [1, 9, 17] { XCTAssertEqual(Double(counts[k]) / 4000, 1.0 / 17, accuracy: 0.015, "uniform P(k = \(k))") }
    }

    func testJumpWeightingScalesShortJumpsUp() {
        var config = CTMConfig()
        config.weighting = .uniform
        XCTAssertEqual(config.weight(t: 2, s: 1.5), 1, "uniform weights")
        config.weighting = .jump
        config.weightingPower = 1
        // 1 / (1 - s/t): a quarter of the way (s = 1.5, t = 2) weighs 4; a full jump to 0 weighs 1.
        XCTAssertEqual(config.weight(t: 2, s: 1.5), 4, accuracy: 1e-6)
        XCTAssertEqual(config.weight(t: 2, s: 0), 1)
        config.weightingPower = 2
        XCTAssertEqual(config.weight(t: 2, s: 1.5), 16, accuracy: 1e-5)
    }

    func testGradientReachesTheStudentThroughTheFrozenTargetJump() {
        var rng = SplitMix64(seed: 12)
        let student = ModelName.mlpToy.make(conditionsOnTarget: true, rng: &rng)
        let target = ModelName.mlpToy.make(conditionsOnTarget: true, rng: &rng)
        for q in target.parameters { q.freeze() }
        let p = Preconditioning()
        let x = Tensor.normal(shape: [4, 2], rng: &rng)
        let inner = p.ctmJump(student, x, t: [5, 5, 2, 1], s: [1, 0.5, 0.3, 0.2])
        let outer = p.ctmJump(target, inner, t: [1, 0.5, 0.3, 0.2], s: [0.002, 0.002, 0.002, 0.002])
        let loss = outer.squared().sum()
        let g = Tape.gradients(of: loss, wrt: student.parameters.map(\.value))
        XCTAssertGreaterThan(g.map { l2Norm($0) }.reduce(0, +), 0, "the estimate must not be detached before the outer jump")
        XCTAssertTrue(target.parameters.allSatisfy { !$0.value.requiresGradient }, "the target network is frozen")
    }

    func testTwoTimeNetworkGradientsMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 21)
        let network = MLPToy(width: 16, conditionsOnTarget: true, rng: &rng)
        for q in network.parameters where q.name.hasPrefix("semb") { q.assign(Tensor.normal(shape: q.shape, rng: &rng) * 0.3) }
        let p = Preconditioning()
        gradCheck(shapes: [[3, 2]]) { xs in p.ctmJump(network, xs[0], t: [4, 1, 0.3], s: [0.5, 0.2, 0.01]) }
        // The s embedding's weights, by central differences on a few entries (the gradients the jump adds).
        let x = Tensor.normal(shape: [3, 2], rng: &rng), w = Tensor.normal(shape: [3, 2], rng: &rng)
        func loss() -> Tensor { (p.ctmJump(network, x, t: [4, 1, 0.3], s: [0.5, 0.2, 0.01]) * w).sum() }
        for q in [network.semb!.l1.weight, network.semb!.l2.weight] {
            let analytic = Tape.gradients(of: loss(), wrt: [q.value])[0]
            for i in stride(from: 0, to: q.value.count, by: q.value.count / 7) {
                let original = q.value.storage[i]
                q.update { $0[i] = original + 1e-2 }
                let plus = Tape.withoutRecording { loss().scalar }
                q.update { $0[i] = original - 1e-2 }
                let minus = Tape.withoutRecording { loss().scalar }
                q.update { $0[i] = original }
                assertClose(analytic.storage[i], (plus - minus) / 2e-2, atol: 2e-3, rtol: 3e-2, "\(q.name)[\(i)]")
            }
        }
    }
}

final class CTMSamplingTimesTests: XCTestCase {
    func testDefaultJumpTimesLieOnTheTrainingGrid() {
        var plan = SamplingPlan(kind: .ctm, steps: 4)
        XCTAssertNil(plan.gridTimes, "without a training grid the sampler uses a Karras grid of steps + 1 points")
        plan.trainingGridPoints = 18
        let grid = CTMConfig().grid
        XCTAssertEqual(plan.gridTimes, [grid[0], grid[4], grid[8], grid[13]])
        plan.steps = 17
        XCTAssertEqual(plan.gridTimes, Array(grid.prefix(17)))
        plan.steps = 18
        XCTAssertNil(plan.gridTimes, "more jumps than grid intervals fall back to the Karras grid")
    }
}
