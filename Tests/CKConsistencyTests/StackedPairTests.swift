// A consistency pair's student and teacher as one stacked batch against the two separate passes they replace.
import XCTest
import CKTensor
import CKNN
import CKDatasets
@testable import CKConsistency
import CKTestSupport

final class StackedPairTests: XCTestCase {
    /// The iCT loss and every parameter's gradient, with student and teacher stacked or in two passes, from the
    /// same draws.
    private func lossAndGradients(_ network: some Backbone, batch: Tensor, stacked: Bool) -> (loss: Float, gradients: [Tensor]) {
        let saved = ConsistencyPair.stacksPasses
        ConsistencyPair.stacksPasses = stacked
        defer { ConsistencyPair.stacksPasses = saved }
        var rng = SplitMix64(seed: 9)
        let loss = ictLoss(network: network, batch: batch, step: 60, config: ICTConfig(totalSteps: 100), tables: SigmaPairTables(),
                           rng: &rng).loss
        return (loss.scalar, Tape.gradients(of: loss, wrt: network.parameters.map(\.value)))
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
            ("unet-xs", ModelName.unetXS.make(sampleShape: Shapes.sampleShape, rng: &rng), Shapes.batch(count: 4, seed: 3)),
            ("latent-net", ModelName.latentNet.make(rng: &rng), Tensor.normal(shape: [4, 4, 7, 7], rng: &rng)),
        ]
        for (name, network, batch) in networks {
            let stacked = lossAndGradients(network, batch: batch, stacked: true)
            let separate = lossAndGradients(network, batch: batch, stacked: false)
            XCTAssertEqual(stacked.loss, separate.loss, accuracy: 1e-5 * abs(separate.loss), name)
            XCTAssertGreaterThan(abs(separate.loss), 0, name)
            for (k, (a, b)) in zip(stacked.gradients, separate.gradients).enumerated() {
                let (difference, norm) = l2Difference(a.storage, b.storage)
                XCTAssertLessThanOrEqual(difference, 1e-4 * max(norm, 1e-6), "\(name): \(network.parameters[k].name)")
            }
        }
    }
}
