// Gradients that cover only the leading rows (a consistency pair's students stacked over its teachers): every op
// that takes them against the same op given the whole gradient with zero rows, and against central differences.
import XCTest
@testable import CKTensor
import CKTestSupport

final class LeadingRowsTests: XCTestCase {
    /// `f`'s output must take gradients of its leading rows (its node says so); the tape's gradients of
    /// sum(f(x).leadingRows(rows) * w) must be those of sum(f(x) * [w; 0]), where the op sees all rows, in shape
    /// and value; and they must match central differences. The two tape results differ only in how the op's
    /// kernels split their sums (conv chunks, GEMM blocking), hence the small tolerance.
    private func check(_ name: String, shapes: [[Int]], rows: Int, flagged: Bool = true, checkDifferences: Bool = true,
                       tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor) {
        var rng = SplitMix64(seed: UInt64(shapes.flatMap { $0 }.reduce(7, +)))
        let inputs = shapes.map { Tensor.normal(shape: $0, rng: &rng).trackingGradients() }
        let y = f(inputs)
        XCTAssertEqual(y.node?.takesLeadingRows, flagged, "\(name): takes gradients of its leading rows", file: file, line: line)
        XCTAssertLessThan(rows, y.shape[0], "\(name): the check needs rows left out", file: file, line: line)
        let w = Tensor.normal(shape: [rows] + y.shape.dropFirst(), rng: &rng)
        let leading = Tape.gradients(of: (y.leadingRows(rows) * w).sum(), wrt: inputs)
        let whole = Tape.gradients(of: (f(inputs) * w.withRows(of: y.shape)).sum(), wrt: inputs)
        for (k, (a, b)) in zip(leading, whole).enumerated() {
            XCTAssertEqual(a.shape, inputs[k].shape, "\(name): gradient \(k)'s shape", file: file, line: line)
            assertClose(a.storage, b.storage, atol: tolerance, rtol: tolerance, "\(name): gradient \(k) from the leading rows", file: file, line: line)
        }
        if checkDifferences {
            gradCheck(inputs: inputs.map { $0.detached() }, file: file, line: line) { f($0).leadingRows(rows) }
        }
    }

    func testElementwiseOpsTakeLeadingRows() {
        check("linear", shapes: [[5, 3], [4, 3], [4]], rows: 2) { $0[0].linear(weight: $0[1], bias: $0[2]) }
        check("silu", shapes: [[5, 6]], rows: 3) { $0[0].silu() }
        check("scale and shift", shapes: [[4, 3]], rows: 1) { $0[0] * 2 + 1 }
        check("add, same shape", shapes: [[4, 3], [4, 3]], rows: 2) { $0[0] + $0[1] }
        check("add, a bias row", shapes: [[4, 3], [3]], rows: 2) { $0[0] + $0[1] }
        check("subtract, one value per row", shapes: [[4, 3], [4, 1]], rows: 3) { $0[0] - $0[1] }
        check("multiply, one value per row", shapes: [[4, 2, 2], [4, 1, 1]], rows: 2) { $0[0] * $0[1] }
        check("multiply, broadcast over rows", shapes: [[4, 3], [1, 3]], rows: 1) { $0[0] * $0[1] }
    }

    func testImageOpsTakeLeadingRows() {
        check("conv 3x3 with both biases", shapes: [[4, 3, 6, 5], [5, 3, 3, 3], [5], [4, 5]], rows: 2) {
            $0[0].conv2d(weight: $0[1], bias: $0[2], sampleBias: $0[3], padding: 1)
        }
        check("conv 3x3 stride 2", shapes: [[3, 2, 5, 5], [3, 2, 3, 3], [3]], rows: 1) {
            $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1)
        }
        check("conv 1x1", shapes: [[3, 4, 3, 3], [2, 4, 1, 1], [2]], rows: 2) { $0[0].conv2d(weight: $0[1], bias: $0[2]) }
        check("group norm", shapes: [[4, 4, 3, 2], [4], [4]], rows: 2) { $0[0].groupNorm(groupCount: 2, weight: $0[1], bias: $0[2]) }
        check("group norm with SiLU", shapes: [[3, 6, 2, 2], [6], [6]], rows: 1) {
            $0[0].groupNormSiLU(groupCount: 3, weight: $0[1], bias: $0[2])
        }
        check("layer norm over a sample", shapes: [[4, 2, 3, 3], [2, 1, 1]], rows: 2) {
            $0[0].layerNorm(normalizedRank: 3, weight: nil, bias: $0[1])
        }
        check("concatenation of channels", shapes: [[4, 2, 3], [4, 3, 3]], rows: 3) { Tensor.concatenate($0, axis: 1) }
        check("nearest 2x upsampling", shapes: [[3, 2, 2, 3]], rows: 1) { $0[0].upsampledNearest2x() }
    }

    /// Both Winograd tile sizes on a plane big enough for them (against the whole gradient only: central
    /// differences over this many inputs take long, and the Winograd tests check its gradients). The weight's
    /// gradient sums the tiles in other chunks when the zero rows are there; F(4x4)'s transforms have entries up
    /// to 8, so its sums round about ten times more (observed 5e-5 relative on a value of 2.3).
    func testWinogradConvolutionTakesLeadingRows() {
        let saved = ConvTuning.winograd
        defer { ConvTuning.winograd = saved }
        for (mode, tolerance) in [(ConvTuning.Winograd.always, Float(1e-5)), (.largeTiles, 2e-4)] {
            ConvTuning.winograd = mode
            check("winograd \(mode)", shapes: [[5, 3, 12, 12], [4, 3, 3, 3], [4], [5, 4]], rows: 2, checkDifferences: false,
                  tolerance: tolerance) {
                $0[0].conv2d(weight: $0[1], bias: $0[2], sampleBias: $0[3], padding: 1)
            }
        }
    }

    /// Rows by index numbered in order of first use, as `DistinctConditions` numbers them: the leading rows' gradient
    /// comes back covering the rows they took (rows 0 and 1 here, of 4), the rest left for the tape to treat as zero.
    func testRowsByIndexTakeLeadingRows() {
        check("rows by index", shapes: [[4, 3]], rows: 3) { $0[0].rows(at: [0, 1, 0, 2, 1, 3]) }
        var rng = SplitMix64(seed: 3)
        let x = Tensor.normal(shape: [4, 3], rng: &rng).trackingGradients()
        let y = x.rows(at: [0, 1, 0, 2, 1, 3])
        let pulled = y.node!.pullback!(Tensor(shape: [3, 3], storage: (0..<9).map(Float.init)))
        XCTAssertEqual(pulled[0]?.shape, [2, 3], "rows 0 ..< 3 take rows 0 and 1 only")
        assertClose(pulled[0]!.storage, [6, 8, 10, 3, 4, 5], "row 0 taken twice: its copies' gradients added")
    }

    /// Ops that do not take them get the gradient padded with zero rows by the tape: division, the exponential,
    /// a layer norm over the whole tensor, concatenation along the rows.
    func testOtherOpsGetTheGradientPadded() {
        check("divide", shapes: [[4, 3], [4, 3]], rows: 2, flagged: false) { $0[0] / ($0[1].exp() + 1) }
        check("exp", shapes: [[4, 3]], rows: 1, flagged: false) { $0[0].exp() }
        check("layer norm over everything", shapes: [[3, 4]], rows: 1, flagged: false) {
            $0[0].layerNorm(normalizedRank: 2, weight: nil, bias: nil)
        }
        check("concatenation of rows", shapes: [[2, 3], [3, 3]], rows: 3, flagged: false) { Tensor.concatenate($0, axis: 0) }
    }

    /// A tensor read both by an op that sends back its leading rows and by one that sends back all of them: the
    /// tape adds the two in either order, and returns gradients of the inputs' full shapes.
    func testLeadingAndWholeGradientsAddUp() {
        gradCheck(shapes: [[5, 3]]) { x in
            let y = x[0] * 0.5
            return y.leadingRows(2) + y.slice(2..<4)
        }
        gradCheck(shapes: [[5, 3]]) { x in
            let y = x[0].exp()
            return y.slice(1..<3) * y.leadingRows(2).silu()
        }
        var rng = SplitMix64(seed: 5)
        let x = Tensor.normal(shape: [4, 2], rng: &rng).trackingGradients()
        let g = Tape.gradients(of: (x.leadingRows(1) * 3).sum(), wrt: [x])[0]
        XCTAssertEqual(g.shape, [4, 2])
        XCTAssertEqual(g.storage, [3, 3, 0, 0, 0, 0, 0, 0])
    }
}
