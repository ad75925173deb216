// EDM: the Heun solver against the exact ODE solution for Gaussian data, the loss weighting, the levels.
import XCTest
import CKTensor
import CKNN
import CKConsistency
import CKTestSupport

final class EDMTests: XCTestCase {
    /// Data N(0, s^2): D(x, sigma) = s^2 / (s^2 + sigma^2) x, and the ODE dx/dsigma = sigma x / (s^2 + sigma^2)
    /// has the solution x(sigma) = x(sigma0) sqrt((s^2 + sigma^2) / (s^2 + sigma0^2)).
    private func gaussianDenoiser(spread: Float) -> (Tensor, [Float]) -> Tensor {
        { x, sigma in
            let scale = sigma.map { spread * spread / (spread * spread + $0 * $0) }
            return x * Tensor(shape: [sigma.count] + Array(repeating: 1, count: x.rank - 1), storage: scale)
        }
    }

    func testHeunMatchesTheExactODESolutionOnGaussianData() {
        let spread: Float = 0.5
        var rng = SplitMix64(seed: 2)
        let start = Tensor.normal(shape: [8, 2], rng: &rng) * 80
        func error(steps: Int) -> Float {
            let levels = heunLevels(steps: steps)
            let got = heunSolve(start, levels: levels, denoise: gaussianDenoiser(spread: spread))
            let exact = start * (spread / (spread * spread + 6400).squareRoot())
            return zip(got.storage, exact.storage).map { abs($0 - $1) }.max()! / exact.storage.map(abs).max()!
        }
        // A float64 transcription of the same scheme gives relative errors 9.8e-3, 2.3e-3, 5.6e-4 at 40, 80, 160
        // steps: second order, as Heun should be.
        let coarse = error(steps: 40), fine = error(steps: 80), finest = error(steps: 160)
        XCTAssertLessThan(finest, 1e-3, "relative error at 160 steps")
        XCTAssertGreaterThan(coarse / fine, 3, "second order: doubling the steps must cut the error about 4x (\(coarse) -> \(fine))")
    }

    func testHeunStepOfOneIntervalMatchesTheHandFormula() {
        let d = gaussianDenoiser(spread: 1)
        let x = Tensor(shape: [1, 1], storage: [2])
        let y = heunStep(x, from: [3], to: [1], denoise: d)
        // d_a = (2 - 2/10)/3 = 0.6; x' = 2 - 2*0.6 = 0.8; d_b = (0.8 - 0.4)/1 = 0.4; x = 2 - 2*(0.5) = 1.0
        assertClose(y.storage[0], 1.0, atol: 1e-6)
        // Landing on 0 takes Euler's step: 2 - 3 * 0.6 = 0.2
        assertClose(heunStep(x, from: [3], to: [0], denoise: d).storage[0], 0.2, atol: 1e-6)
    }

    func testLevelsAndEvaluationCount() {
        let levels = heunLevels(steps: 18)
        XCTAssertEqual(levels.count, 19)
        XCTAssertEqual(levels.first, 80)
        XCTAssertEqual(levels.last, 0)
        assertClose(levels[17], 0.002, atol: 1e-7)
        XCTAssertEqual(SamplingPlan(kind: .heun, steps: 18).functionEvaluations, 35)
        XCTAssertEqual(heunLevels(steps: 1), [80, 0])
    }

    func testLossWeightAndDenoiserScalings() {
        let p = Preconditioning()
        assertClose(p.edmWeight(0.5), 8, atol: 1e-5)           // (0.25 + 0.25) / (0.25 * 0.25)
        // With F = 0 the denoiser is cSkip x.
        var rng = SplitMix64(seed: 1)
        let network = ModelName.mlpToy.make(rng: &rng)
        for q in network.parameters where q.name.hasPrefix("out") { q.assign(Tensor(zeros: q.shape)) }
        let x = Tensor.normal(shape: [2, 2], rng: &rng)
        let d = Tape.withoutRecording { p.edmDenoiser(network, x, sigma: [1, 2]) }
        assertClose(d.storage, [x.storage[0] * 0.2, x.storage[1] * 0.2, x.storage[2] / 17, x.storage[3] / 17], atol: 1e-6)
    }
}

final class SamplingPlanTests: XCTestCase {
    func testEachMethodNamesItsSamplersDefaultFirst() {
        XCTAssertEqual(CTM.samplers, [.ctm, .heun])
        XCTAssertEqual(EDM.samplers, [.heun])
        XCTAssertEqual(ICT.defaultSampler, .consistency)
        XCTAssertEqual(LatentCT.defaultSampler, .consistency)
        for method in MethodName.allCases {
            XCTAssertFalse(method.type.samplers.isEmpty, "\(method) has no sampler")
            XCTAssertEqual(method.type.name, method, "the registry maps \(method) to a type named \(method.type.name)")
            let preview = SamplingPlan.preview(method.type)
            XCTAssertEqual(preview.kind, method.type.defaultSampler)
        }
        XCTAssertThrowsError(try SamplingPlan(kind: .ctm, steps: 2, gamma: 1.5).validate())
        XCTAssertThrowsError(try SamplingPlan(kind: .consistency, steps: 0, sigmas: [0.8, 80]).validate())
    }
}
