// Adam and RAdam against the update rules of the torch.optim docs, written out here in double precision.
import XCTest
import Foundation
import CKTensor
import CKTestSupport
@testable import CKNN

/// torch.optim.Adam, from its documentation (amsgrad off, maximize off):
///   g <- g + lambda * theta                              if lambda != 0
///   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
///   mHat = m / (1 - b1^t);    vHat = v / (1 - b2^t)
///   theta <- theta - lr * mHat / (sqrt(vHat) + eps)
struct ReferenceAdam {
    var lr: Double, b1 = 0.9, b2 = 0.999, eps = 1e-8, lambda = 0.0
    var m: [Double] = [], v: [Double] = [], t = 0

    mutating func step(_ theta: inout [Double], _ grad: [Double]) {
        if m.isEmpty { m = Array(repeating: 0, count: theta.count); v = m }
        t += 1
        for i in theta.indices {
            let g = grad[i] + lambda * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let mHat = m[i] / (1 - pow(b1, Double(t))), vHat = v[i] / (1 - pow(b2, Double(t)))
            theta[i] -= lr * mHat / (vHat.squareRoot() + eps)
        }
    }
}

/// torch.optim.RAdam, from its documentation (decoupled weight decay off):
///   g <- g + lambda * theta                              if lambda != 0
///   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2;   mHat = m / (1 - b1^t)
///   rhoInf = 2 / (1 - b2) - 1;   rhoT = rhoInf - 2 t b2^t / (1 - b2^t)
///   rhoT > 5:  l = sqrt(1 - b2^t) / (sqrt(v) + eps)
///              r = sqrt((rhoT - 4)(rhoT - 2) rhoInf / ((rhoInf - 4)(rhoInf - 2) rhoT))
///              theta <- theta - lr * mHat * r * l
///   otherwise: theta <- theta - lr * mHat
struct ReferenceRAdam {
    var lr: Double, b1 = 0.9, b2 = 0.999, eps = 1e-8, lambda = 0.0
    var m: [Double] = [], v: [Double] = [], t = 0
    var rhos: [Double] = []

    mutating func step(_ theta: inout [Double], _ grad: [Double]) {
        if m.isEmpty { m = Array(repeating: 0, count: theta.count); v = m }
        t += 1
        let td = Double(t)
        let rhoInf = 2 / (1 - b2) - 1
        let rhoT = rhoInf - 2 * td * pow(b2, td) / (1 - pow(b2, td))
        rhos.append(rhoT)
        for i in theta.indices {
            let g = grad[i] + lambda * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let mHat = m[i] / (1 - pow(b1, td))
            if rhoT > 5 {
                let l = (1 - pow(b2, td)).squareRoot() / (v[i].squareRoot() + eps)
                let r = ((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT)).squareRoot()
                theta[i] -= lr * mHat * r * l
            } else {
                theta[i] -= lr * mHat
            }
        }
    }
}

final class OptimizerTests: XCTestCase {
    let theta0: [Float] = [0.5, -1.0, 2.0, 0.0]
    let grads: [[Float]] = [[0.1, -0.2, 0.3, 0.0], [-0.4, 0.5, 0.05, 0.0], [0.2, 0.2, -0.1, 1.0],
                            [0.3, -0.1, 0.2, -0.5], [-0.2, 0.4, 0.1, 0.3], [0.1, 0.1, -0.3, 0.2],
                            [0.5, -0.3, 0.0, 0.1], [-0.1, 0.2, 0.4, -0.2]]

    func parameter() -> Parameter { Parameter(name: "layer.weight", value: Tensor(shape: [2, 2], storage: theta0)) }

    func testDefaultsAreTorchDefaultsWithNoWeightDecay() {
        let adam = Adam(parameters: [parameter()]), radam = RAdam(parameters: [parameter()])
        XCTAssertEqual([adam.learningRate, adam.beta1, adam.beta2, adam.eps, adam.weightDecay], [1e-3, 0.9, 0.999, 1e-8, 0])
        XCTAssertEqual([radam.learningRate, radam.beta1, radam.beta2, radam.eps, radam.weightDecay], [1e-3, 0.9, 0.999, 1e-8, 0])
    }

    /// Steps `optimizer` (over `p` alone) on the first `count` fixed gradients beside `reference`, comparing the
    /// values after each step; `afterStep(t)` adds checks of its own.
    private func stepBeside(_ optimizer: inout some Optimizer, _ p: Parameter, count: Int, _ name: String,
                            reference: (inout [Double], [Double]) -> Void, afterStep: (Int) -> Void = { _ in }) {
        var theta = theta0.map(Double.init)
        for t in 0..<count {
            optimizer.step([Tensor(shape: [2, 2], storage: grads[t])])
            reference(&theta, grads[t].map(Double.init))
            assertClose(p.value.storage, theta.map(Float.init), atol: 1e-6, rtol: 1e-5, "\(name) step \(t + 1)")
            afterStep(t)
        }
    }

    func testAdamThreeStepsMatchTheTorchUpdate() {
        withEachMomentPath { path in
            let p = parameter()
            var adam = Adam(parameters: [p], learningRate: 0.1)
            var reference = ReferenceAdam(lr: 0.1)
            stepBeside(&adam, p, count: 3, "Adam, \(path)", reference: { reference.step(&$0, $1) }) { t in
                if t == 0 {
                    // Step 1: mHat = g and vHat = g^2, so theta1 = theta0 - lr * g / (|g| + eps) ~ theta0 - lr * sign(g);
                    // a zero gradient leaves its entry alone.
                    assertClose(p.value.storage, [0.4, -0.9, 1.9, 0.0], atol: 1e-6, rtol: 0, "Adam step 1 by hand, \(path)")
                }
                if t == 1 {
                    // Entry 0 by hand: m2 = 0.9 * 0.01 + 0.1 * (-0.4) = -0.031, v2 = 0.999e-5 + 0.001 * 0.16 = 1.6999e-4;
                    // mHat = -0.031 / 0.19, vHat = 1.6999e-4 / 0.001999, theta2 = 0.4 + 0.1 * 0.16316 / 0.29161 = 0.455950.
                    assertClose(p.value.storage[0], 0.4559504, atol: 2e-6, rtol: 0, "Adam step 2 by hand, \(path)")
                }
            }
            XCTAssertEqual(adam.stepCount, 3)
        }
    }

    func testAdamWeightDecayAddsL2ToTheGradient() {
        withEachMomentPath { path in
            let p = parameter()
            var adam = Adam(parameters: [p], learningRate: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1)
            var reference = ReferenceAdam(lr: 0.05, b1: 0.8, b2: 0.99, eps: 1e-6, lambda: 0.1)
            stepBeside(&adam, p, count: 3, "Adam+L2, \(path)", reference: { reference.step(&$0, $1) })
            // With decay the zero-gradient entry 3 stays at 0 (0 * lambda), while the others differ from plain Adam.
            var plain = theta0.map(Double.init), plainRef = ReferenceAdam(lr: 0.05, b1: 0.8, b2: 0.99, eps: 1e-6)
            for t in 0..<3 { plainRef.step(&plain, grads[t].map(Double.init)) }
            XCTAssertGreaterThan(abs(plain[1] - Double(p.value.storage[1])), 1e-4)
        }
    }

    func testLearningRateIsSettableBetweenSteps() {
        let p = parameter()
        var adam = Adam(parameters: [p], learningRate: 0.1)
        var reference = ReferenceAdam(lr: 0.1)
        var theta = theta0.map(Double.init)
        for t in 0..<3 {
            adam.learningRate = [0.1, 0.01, 0.3][t]
            reference.lr = [0.1, 0.01, 0.3][t]
            adam.step([Tensor(shape: [2, 2], storage: grads[t])])
            reference.step(&theta, grads[t].map(Double.init))
        }
        assertClose(p.value.storage, theta.map(Float.init), atol: 1e-6, rtol: 1e-5)
    }

    func testRAdamFirstStepsAreUnadapted() {
        withEachMomentPath { path in
            // b2 = 0.999: rhoT = 1, 1.999, 2.998 for t = 1, 2, 3 (all <= 5), so theta <- theta - lr * mHat.
            let p = parameter()
            var radam = RAdam(parameters: [p], learningRate: 0.1)
            var reference = ReferenceRAdam(lr: 0.1)
            stepBeside(&radam, p, count: 3, "RAdam, \(path)", reference: { reference.step(&$0, $1) }) { t in
                if t == 0 {
                    // Step 1: mHat = g exactly, so theta1 = theta0 - lr * g.
                    assertClose(p.value.storage, [0.49, -0.98, 1.97, 0.0], atol: 1e-7, rtol: 0, "RAdam step 1 by hand, \(path)")
                }
            }
            XCTAssertTrue(reference.rhos.allSatisfy { $0 <= 5 }, "\(reference.rhos), \(path)")
            assertClose(reference.rhos[0], 1, atol: 1e-9)   // rhoInf - 2 b2 / (1 - b2) = 1 for any b2
        }
    }

    func testRAdamRectifiesOnceRhoExceedsFive() {
        withEachMomentPath { path in
            // b2 = 0.9: rhoInf = 19 and rhoT passes 5 at t = 6; weight decay on as well.
            let p = parameter()
            var radam = RAdam(parameters: [p], learningRate: 0.1, beta2: 0.9, weightDecay: 0.05)
            var reference = ReferenceRAdam(lr: 0.1, b2: 0.9, lambda: 0.05)
            var theta = theta0.map(Double.init)
            for t in 0..<8 {
                radam.step([Tensor(shape: [2, 2], storage: grads[t])])
                reference.step(&theta, grads[t].map(Double.init))
                assertClose(p.value.storage, theta.map(Float.init), atol: 2e-6, rtol: 1e-5, "RAdam step \(t + 1), \(path)")
            }
            XCTAssertEqual(reference.rhos.map { $0 > 5 }, [false, false, false, false, false, true, true, true], "\(reference.rhos), \(path)")
        }
    }

    func testLargeParametersSplitOverThreadsMatchTheReference() {
        withEachMomentPath { path in
            var rng = SplitMix64(seed: 11)
            let n = 100_003                                     // several chunks and a ragged end
            let w = Tensor.normal(shape: [n], rng: &rng)
            let p = Parameter(name: "big", value: w), q = Parameter(name: "big", value: w)
            var adam = Adam(parameters: [p], learningRate: 0.01), radam = RAdam(parameters: [q], learningRate: 0.01, beta2: 0.8)
            var ra = ReferenceAdam(lr: 0.01), rr = ReferenceRAdam(lr: 0.01, b2: 0.8)
            var thetaA = w.storage.map(Double.init), thetaR = thetaA
            for _ in 0..<7 {                                    // b2 = 0.8: RAdam rectifies at step 7
                let g = Tensor.normal(shape: [n], rng: &rng)
                adam.step([g]); radam.step([g])
                ra.step(&thetaA, g.storage.map(Double.init)); rr.step(&thetaR, g.storage.map(Double.init))
            }
            assertClose(p.value.storage, thetaA.map(Float.init), atol: 1e-6, rtol: 1e-5, "Adam, \(path)")
            assertClose(q.value.storage, thetaR.map(Float.init), atol: 1e-6, rtol: 1e-5, "RAdam, \(path)")
            XCTAssertEqual(rr.rhos.last.map { $0 > 5 }, true)
        }
    }

    /// All parameters are split over the threads together: the split falls inside tensors and between them.
    func testManyParametersSplitTogetherMatchTheReference() {
        withEachMomentPath { path in
            withThreads(2) {
                var rng = SplitMix64(seed: 12)
                let sizes = [5, 40_001, 3, 60_000, 1, 27]
                let values = sizes.map { Tensor.normal(shape: [$0], rng: &rng) }
                let parameters = values.enumerated().map { Parameter(name: "p\($0.offset)", value: $0.element) }
                var adam = Adam(parameters: parameters, learningRate: 0.01)
                var references = sizes.map { _ in ReferenceAdam(lr: 0.01) }
                var thetas = values.map { $0.storage.map(Double.init) }
                for _ in 0..<3 {
                    let gradients = sizes.map { Tensor.normal(shape: [$0], rng: &rng) }
                    adam.step(gradients)
                    for k in sizes.indices { references[k].step(&thetas[k], gradients[k].storage.map(Double.init)) }
                }
                for k in sizes.indices {
                    assertClose(parameters[k].value.storage, thetas[k].map(Float.init), atol: 1e-6, rtol: 1e-5, "parameter \(k) of \(sizes[k]), \(path)")
                }
            }
        }
    }

    /// A step from several parts (a batch's pieces) adds them as it reads them: the same update, bit for bit, as
    /// a step from their sum taken first in the same order, for both optimizers, with weight decay, on two
    /// threads (the split falls inside tensors), with tensor sizes that leave ragged ends. A part dropped, added
    /// twice or added out of order moves the values.
    func testAStepFromPartsIsTheStepFromTheirSum() {
        withEachMomentPath { path in
            withThreads(2) {
                var rng = SplitMix64(seed: 13)
                let sizes = [7, 30_001, 1, 64]
                let values = sizes.map { Tensor.normal(shape: [$0], rng: &rng) }
                func parameters() -> [Parameter] { values.enumerated().map { Parameter(name: "p\($0.offset)", value: $0.element) } }
                let (fromParts, fromSum) = (parameters(), parameters())
                let (radamParts, radamSum) = (parameters(), parameters())
                var adamA = Adam(parameters: fromParts, learningRate: 0.01, weightDecay: 0.1)
                var adamB = Adam(parameters: fromSum, learningRate: 0.01, weightDecay: 0.1)
                var radamA = RAdam(parameters: radamParts, learningRate: 0.01, beta2: 0.8)
                var radamB = RAdam(parameters: radamSum, learningRate: 0.01, beta2: 0.8)
                for _ in 0..<8 {                                // RAdam un-adapted, then rectified from step 7
                    // Three parts of different scales, so that the order of the additions shows in the last bits.
                    let parts = [1, 1e-4, 1e3].map { (scale: Float) in sizes.map { Tensor.normal(shape: [$0], rng: &rng).mapped(scale: scale, shift: 0) } }
                    var summed = parts[0]
                    for part in parts.dropFirst() {
                        for k in sizes.indices { for i in 0..<sizes[k] { summed[k].storage[i] += part[k].storage[i] } }
                    }
                    adamA.step(summing: parts); adamB.step(summed)
                    radamA.step(summing: parts); radamB.step(summed)
                }
                for k in sizes.indices {
                    XCTAssertEqual(fromParts[k].value.storage, fromSum[k].value.storage, "Adam, parameter \(k) of \(sizes[k]), \(path)")
                    XCTAssertEqual(radamParts[k].value.storage, radamSum[k].value.storage, "RAdam, parameter \(k) of \(sizes[k]), \(path)")
                }
                XCTAssertEqual(adamA.state.map(\.1.storage), adamB.state.map(\.1.storage), "Adam's moments, \(path)")
            }
        }
    }

    /// Runs `body` with each implementation of the moment update (AVX2 where the build has it, and Swift).
    private func withEachMomentPath(_ body: (String) -> Void) {
        withEachImplementation(MomentRule.native, set: { MomentRule.native = $0 }, names: ("avx2 update", "swift update"), body)
    }

    // MARK: - State in checkpoints

    func testStateRoundTripsThroughACheckpointFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ck-opt-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let bias = Parameter(name: "layer.bias", value: Tensor(shape: [3], storage: [0.1, 0.2, 0.3]))
        let params = [parameter(), bias]
        var adam = Adam(parameters: params, learningRate: 0.1)
        var radam = RAdam(parameters: params, learningRate: 0.1, beta2: 0.9)
        let g = [Tensor(shape: [2, 2], storage: grads[0]), Tensor(shape: [3], storage: [0.3, -0.3, 0.1])]
        for _ in 0..<5 { adam.step(g); radam.step(g) }

        var ckpt = Checkpoint()
        ckpt.append(params)
        adam.save(into: &ckpt)
        radam.save(into: &ckpt)
        XCTAssertEqual(adam.state.map(\.0), ["adam.m.layer.weight", "adam.m.layer.bias", "adam.v.layer.weight", "adam.v.layer.bias"])
        XCTAssertEqual(radam.state.map(\.0), ["radam.m.layer.weight", "radam.m.layer.bias", "radam.v.layer.weight", "radam.v.layer.bias"])
        XCTAssertEqual(ckpt.metadata["adam.step"], "5")
        try ckpt.write(to: url)

        // A fresh run resumed from the file continues exactly like the original.
        let back = try Checkpoint.read(from: url)
        let resumed = [Parameter(name: "layer.weight", value: Tensor(zeros: [2, 2])), Parameter(name: "layer.bias", value: Tensor(zeros: [3]))]
        try back.load(into: resumed)
        var adam2 = Adam(parameters: resumed, learningRate: 0.1)
        try adam2.loadState(from: back)
        XCTAssertEqual(adam2.stepCount, 5)
        adam.step(g); adam2.step(g)
        XCTAssertEqual(resumed.map(\.value.storage), params.map(\.value.storage))

        var radam2 = RAdam(parameters: resumed, learningRate: 0.1, beta2: 0.9)
        try radam2.loadState(from: back)
        XCTAssertEqual(radam2.stepCount, 5)
        radam.step(g); radam2.step(g)                   // step 6: the rectified branch, which depends on t
        XCTAssertEqual(resumed.map(\.value.storage), params.map(\.value.storage))
    }

    func testLoadingStateFromACheckpointWithoutItThrows() {
        var adam = Adam(parameters: [parameter()])
        var ckpt = Checkpoint()
        XCTAssertThrowsError(try adam.loadState(from: ckpt)) { error in
            XCTAssertEqual((error as? CheckpointError)?.kind, .missingMetadata(key: "adam.step"))
        }
        ckpt.setMetadata("adam.step", 3)
        XCTAssertThrowsError(try adam.loadState(from: ckpt)) { error in
            guard case .missingTensor(name: "adam.m.layer.weight", _) = (error as? CheckpointError)?.kind else {
                return XCTFail("\(error)")
            }
        }
        XCTAssertEqual(adam.stepCount, 0, "a failed load leaves the optimizer as it was")
    }
}
