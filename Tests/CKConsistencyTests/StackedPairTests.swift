// A consistency pair's student and teacher as one stacked batch against the two separate passes they replace.
import XCTest
import CKTensor
import CKNN
import CKDatasets
@testable import CKConsistency
import CKTestSupport

final class StackedPairTests: XCTestCase {
    /// A loss and every parameter's gradient, with student and teacher stacked or in two passes, from the same draws.
    private func lossAndGradients(_ network: some Backbone, stacked: Bool,
                                  _ loss: (inout SplitMix64) -> Tensor) -> (loss: Float, gradients: [Tensor]) {
        let saved = ConsistencyPair.stacksPasses
        ConsistencyPair.stacksPasses = stacked
        defer { ConsistencyPair.stacksPasses = saved }
        var rng = SplitMix64(seed: 9)
        let value = loss(&rng)
        return (value.scalar, Tape.gradients(of: value, wrt: network.parameters.map(\.value)))
    }

    private func assertStackedIsSeparate(_ name: String, _ network: some Backbone, _ loss: (inout SplitMix64) -> Tensor,
                                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(network.stacksConsistencyPairs, "\(name) runs its pairs stacked", file: file, line: line)
        let stacked = lossAndGradients(network, stacked: true, loss)
        let separate = lossAndGradients(network, stacked: false, loss)
        XCTAssertEqual(stacked.loss, separate.loss, accuracy: 1e-5 * abs(separate.loss), name, file: file, line: line)
        XCTAssertGreaterThan(abs(separate.loss), 0, name, file: file, line: line)
        for (k, (a, b)) in zip(stacked.gradients, separate.gradients).enumerated() {
            let (difference, norm) = l2Difference(a.storage, b.storage)
            XCTAssertLessThanOrEqual(difference, 1e-4 * max(norm, 1e-6), "\(name): \(network.parameters[k].name)", file: file, line: line)
        }
    }

    /// Every network the consistency pair trains, one class-conditional: the same loss and gradients either way.
    /// The stacked pass runs each product and convolution on twice the rows, which may split their sums
    /// differently (GEMM blocking, convolution chunks), so values agree to float rounding, not bit for bit: the
    /// bound is 1e-4 relative per tensor, as for a batch split into pieces (CoreShardsTests), where the loss
    /// sums terms of very different sizes. A teacher run on the students' noise levels, rows out of order or
    /// the teacher's rows given gradient change them by far more.
    func testStackedPairGivesTheTwoPassesLossAndGradients() throws {
        var rng = SplitMix64(seed: 4)
        let conditional = LabelledNetwork(ModelName.mlpToy.make(classCount: 3, rng: &rng), labels: .rows([0, 2, 1, 3, 2, 0]))
        let networks: [(String, any Backbone, Tensor)] = [
            ("mlp-toy", ModelName.mlpToy.make(rng: &rng), Tensor.normal(shape: [6, 2], rng: &rng)),
            ("class-conditional mlp-toy", conditional, Tensor.normal(shape: [6, 2], rng: &rng)),
            ("unet-s", ModelName.unetS.make(sampleShape: Shapes.sampleShape, rng: &rng), Shapes.batch(count: 4, seed: 3)),
            ("latent-net", ModelName.latentNet.make(rng: &rng), Tensor.normal(shape: [4, 4, 7, 7], rng: &rng)),
        ]
        for (name, network, batch) in networks {
            assertStackedIsSeparate(name, network) { rng in
                ictLoss(network: network, batch: batch, step: 60, config: ICTConfig(totalSteps: 100), tables: SigmaPairTables(),
                        rng: &rng).loss
            }
        }
    }

    /// ECT's student and target (f at r, masked where r = 0) the same way, following the data's noise lines and
    /// a teacher's ODE. At step 10 of 100 some of the eight levels t have r = 0 and some not.
    func testStackedECTGivesTheTwoPassesLossAndGradients() {
        var rng = SplitMix64(seed: 6)
        let network = ModelName.unetS.make(sampleShape: Shapes.sampleShape, rng: &rng)
        let teacherNetwork = ModelName.unetXS.make(sampleShape: Shapes.sampleShape, rng: &rng)
        let batch = Shapes.batch(count: 8, seed: 8)
        let p = Preconditioning()
        let teacher: (Tensor, [Float]) -> Tensor = { x, sigma in p.edmDenoiser(teacherNetwork, x, sigma: sigma) }
        var levels = SplitMix64(seed: 9)
        let r = (0..<8).map { _ in ECTConfig().r(t: min(max(exp(ECTConfig().pMean + ECTConfig().pStd * levels.normalDouble()), 0.002), 80),
                                                   stage: ECTConfig().stage(step: 10, iterations: 100)) }
        XCTAssertTrue(r.contains(0) && r.contains { $0 > 0 }, "the draws mix r = 0 and r > 0: \(r)")
        for (name, teacher) in [("ECT", nil), ("ECT following a teacher", teacher)] {
            assertStackedIsSeparate(name, network) { rng in
                ectLoss(network: network, batch: batch, step: 10, iterations: 100, config: ECTConfig(), teacher: teacher, rng: &rng).loss
            }
        }
    }

    /// Half-width unet-xs keeps the two passes (measured slower stacked), a class-conditional network does what
    /// its base does, the other networks stack.
    func testWhichNetworksStack() {
        var rng = SplitMix64(seed: 1)
        XCTAssertFalse(ModelName.unetXS.make(sampleShape: Shapes.sampleShape, rng: &rng).stacksConsistencyPairs)
        XCTAssertFalse(LabelledNetwork(ModelName.unetXS.make(classCount: 2, rng: &rng), labels: .every(0)).stacksConsistencyPairs)
        for name in [ModelName.mlpToy, .unetS, .latentNet, .latentNetGN] {
            XCTAssertTrue(name.make(rng: &rng).stacksConsistencyPairs, name.rawValue)
        }
        XCTAssertTrue(LabelledNetwork(ModelName.unetS.make(classCount: 2, rng: &rng), labels: .every(0)).stacksConsistencyPairs)
    }
}
