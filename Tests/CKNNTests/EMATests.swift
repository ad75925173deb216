// EMA of parameters: values after updates, the half-life decay, swapping for sampling, checkpoint state.
import XCTest
import Foundation
import CKTensor
import CKTestSupport
@testable import CKNN

final class EMATests: XCTestCase {
    func testTwoUpdatesByHand() {
        let w = Parameter(name: "w", value: Tensor(shape: [2], storage: [1, 2]))
        let b = Parameter(name: "b", value: Tensor(scalar: -4))
        var ema = EMA(parameters: [w, b], decay: 0.9)
        assertClose(ema.values.flatMap(\.storage), [1, 2, -4], "starts at the current values")

        w.assign(Tensor(shape: [2], storage: [3, 0])); b.assign(Tensor(scalar: 6))
        ema.update(from: [w, b])
        // ema = 0.9 * ema + 0.1 * w:  0.9 + 0.3 = 1.2,  1.8 + 0 = 1.8,  -3.6 + 0.6 = -3.0
        assertClose(ema.values.flatMap(\.storage), [1.2, 1.8, -3.0], atol: 1e-6)

        w.assign(Tensor(shape: [2], storage: [-1, 4])); b.assign(Tensor(scalar: 0))
        ema.update(from: [w, b])
        // 1.08 - 0.1 = 0.98,  1.62 + 0.4 = 2.02,  -2.7 + 0 = -2.7
        assertClose(ema.values.flatMap(\.storage), [0.98, 2.02, -2.7], atol: 1e-6)
        assertClose(w.value.storage, [-1, 4], "the parameters themselves are untouched")
    }

    func testLargeParameterMatchesTheFormulaInEveryLane() {
        var rng = SplitMix64(seed: 9)
        let n = 70_001                                        // chunks for two threads and a ragged tail
        let w = Parameter(name: "w", value: Tensor.normal(shape: [n], rng: &rng))
        let start = w.value.storage
        var ema = EMA(parameters: [w], decay: 0.99)
        let next = Tensor.normal(shape: [n], rng: &rng)
        w.assign(next)
        ema.update(from: [w])
        assertClose(ema.values[0].storage, zip(start, next.storage).map { 0.99 * $0 + 0.01 * $1 }, atol: 1e-6)
    }

    /// All parameters are split over the threads together: the split falls inside tensors and between them.
    func testManyParametersSplitTogetherMatchTheFormula() {
        withThreads(2) {
            var rng = SplitMix64(seed: 10)
            let sizes = [3, 40_001, 0, 30_000, 1, 9]
            let parameters = sizes.enumerated().map { Parameter(name: "p\($0.offset)", value: Tensor.normal(shape: [$0.element], rng: &rng)) }
            let starts = parameters.map(\.value.storage)
            var ema = EMA(parameters: parameters, decay: 0.9)
            let next = sizes.map { Tensor.normal(shape: [$0], rng: &rng) }
            for (p, v) in zip(parameters, next) { p.assign(v) }
            ema.update(from: parameters)
            for k in sizes.indices {
                XCTAssertEqual(ema.values[k].storage.count, sizes[k])
                guard sizes[k] > 0 else { continue }                // an empty tensor is skipped, not a crash
                assertClose(ema.values[k].storage, zip(starts[k], next[k].storage).map { 0.9 * $0 + 0.1 * $1 }, atol: 1e-6, "tensor \(k) of \(sizes[k])")
            }
        }
    }

    func testHalfLifeDecay() {
        // After `steps` updates an old value's weight is decay^steps = 1/2.
        for steps in [1.0, 10, 1000, 0.5] {
            let d = Double(EMA.decay(halfLife: steps))
            assertClose(pow(d, steps), 0.5, atol: 1e-4, rtol: 0, "half-life \(steps)")
        }
        XCTAssertEqual(EMA.decay(halfLife: 1), 0.5)
        assertClose(EMA.decay(halfLife: 2), Float(0.5.squareRoot()), atol: 1e-7)
    }

    func testCopyAndSwapForSampling() {
        let w = Parameter(name: "w", value: Tensor(shape: [2], storage: [1, 2]))
        var ema = EMA(parameters: [w], decay: 0.5)
        w.assign(Tensor(shape: [2], storage: [3, 4]))
        ema.update(from: [w])                                   // ema = [2, 3], w = [3, 4]

        let seen = ema.withAveragedValues(in: [w]) { w.value.storage }
        XCTAssertEqual(seen, [2, 3], "inside: the parameters hold the averages")
        XCTAssertEqual(w.value.storage, [3, 4], "afterwards: the trained values are back")
        XCTAssertEqual(ema.values[0].storage, [2, 3])

        ema.swap(with: [w])
        XCTAssertEqual(w.value.storage, [2, 3])
        XCTAssertEqual(ema.values[0].storage, [3, 4])
        ema.swap(with: [w])

        ema.copy(into: [w])
        XCTAssertEqual(w.value.storage, [2, 3])
        XCTAssertTrue(w.value.requiresGradient)
    }

    func testStateRoundTripsThroughACheckpoint() throws {
        let w = Parameter(name: "down.0.weight", value: Tensor(shape: [2], storage: [1, 2]))
        var ema = EMA(parameters: [w], decay: 0.9)
        w.assign(Tensor(shape: [2], storage: [11, 12]))
        ema.update(from: [w])
        XCTAssertEqual(ema.state.map(\.0), ["ema.down.0.weight"])

        var ckpt = Checkpoint()
        ckpt.append(ema.state)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ck-ema-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try ckpt.write(to: url)

        var resumed = EMA(parameters: [w], decay: 0.9)          // starts from w = [11, 12]
        try resumed.loadState(from: Checkpoint.read(from: url))
        XCTAssertEqual(resumed.values[0].storage, ema.values[0].storage)

        XCTAssertThrowsError(try resumed.loadState(from: Checkpoint())) { error in
            guard case .missingTensor(name: "ema.down.0.weight", _) = (error as? CheckpointError)?.kind else { return XCTFail("\(error)") }
        }
    }
}
