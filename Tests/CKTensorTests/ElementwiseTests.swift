// Elementwise ops and broadcasting: values and finite-difference gradients.
import XCTest
import CKTensor
import CKTestSupport

final class ElementwiseTests: XCTestCase {
    func testBroadcastAddValues() {
        let a = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3], storage: [10, 20, 30])
        assertClose((a + b).storage, [11, 22, 33, 14, 25, 36])
        let c = Tensor(shape: [2, 1], storage: [100, 200])
        assertClose((a + c).storage, [101, 102, 103, 204, 205, 206])
    }

    func testSummedToShapeIsAdjointOfBroadcast() {
        let g = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        assertClose(g.summed(toShape: [3]).storage, [5, 7, 9])
        assertClose(g.summed(toShape: [2, 1]).storage, [6, 15])
        assertClose(g.summed(toShape: [1, 1]).storage, [21])
    }

    func testBinaryGradients() {
        gradCheck(shapes: [[2, 3, 4], [3, 1]]) { $0[0] + $0[1] }
        gradCheck(shapes: [[2, 3, 4], [1, 3, 4]]) { $0[0] - $0[1] }
        gradCheck(shapes: [[2, 3, 4], [4]]) { $0[0] * $0[1] }
        gradCheck(inputs: [Tensor(shape: [2, 3], storage: [1, -2, 3, 0.5, 2, -1]),
                           Tensor(shape: [3], storage: [1.5, 2, -2.5])]) { $0[0] / $0[1] }
    }

    func testUnaryGradients() {
        gradCheck(shapes: [[3, 5]]) { $0[0].silu() }
        gradCheck(shapes: [[3, 5]]) { $0[0].exp() }
        gradCheck(shapes: [[3, 5]]) { $0[0].sigmoid() }
        gradCheck(shapes: [[3, 5]]) { $0[0].squared() }
        gradCheck(shapes: [[3, 5]]) { ($0[0] * 2 + 1) - 3 }
        let positive = Tensor(shape: [2, 4], storage: [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4])
        gradCheck(inputs: [positive]) { $0[0].log() }
        gradCheck(inputs: [positive]) { $0[0].sqrt() }
        gradCheck(inputs: [positive]) { $0[0].pow(1.5) }
        gradCheck(shapes: [[3, 5]]) { $0[0].negated() }
        // clamp: values kept clear of the bounds, where the derivative is 1 inside and 0 outside
        let spread = Tensor(shape: [2, 4], storage: [-2.5, -0.5, 0.3, 0.9, 1.7, -1.4, 0.05, 2.2])
        gradCheck(inputs: [spread]) { $0[0].clamped(-1, 1) }
    }

    /// The AVX-512 SiLU loops give the Swift loops' bits: the op, its gradient and GroupNorm's fused SiLU (both
    /// directions), at lengths around the 16 lanes, with values past the exponential's clamp, zeros, infinities and NaN.
    func testNativeSiLULoopsGiveTheSwiftBits() throws {
        guard NativePointwise.available else { throw XCTSkip("needs AVX-512") }
        let special: [Float] = [0, -0.0, 87, -87, 87.5, -88, 100, -100, 1e-30, -1e-30, .infinity, -.infinity, .nan, 3.5, -3.5]
        var rng = SplitMix64(seed: 11)
        for count in [1, 7, 15, 16, 17, 31, 33, 300] {
            var values = Tensor.normal(shape: [count], rng: &rng).storage.map { $0 * 12 }
            for (i, v) in special.enumerated() where i < count { values[(i * 7) % count] = v }
            let x = Tensor(shape: [count], storage: values), seed = Tensor.normal(shape: [count], rng: &rng)
            var results: [[[Float]]] = []
            withEachImplementation(NativePointwise.runs, set: { NativePointwise.runs = $0 }, names: ("avx-512", "swift")) { _ in
                let xt = x.trackingGradients()
                let y = xt.silu()
                results.append([y.storage, Tape.gradients(of: y, seed: seed, wrt: [xt])[0].storage])
            }
            XCTAssertEqual(results.count, 2)
            for (what, pair) in zip(["silu", "gradient"], zip(results[0], results[1])) {
                XCTAssertEqual(pair.0.map(\.bitPattern), pair.1.map(\.bitPattern), "\(what) of \(count) values")
            }
        }
        // GroupNorm's fused SiLU: channel planes of 5 and 17 values (a partial block each).
        for spatial in [5, 17] {
            let x = Tensor.normal(shape: [2, 4, spatial], rng: &rng), seed = Tensor.normal(shape: [2, 4, spatial], rng: &rng)
            let w = Tensor.normal(shape: [4], rng: &rng), b = Tensor.normal(shape: [4], rng: &rng)
            var results: [[[Float]]] = []
            withEachImplementation(NativePointwise.runs, set: { NativePointwise.runs = $0 }, names: ("avx-512", "swift")) { _ in
                let xt = x.trackingGradients(), wt = w.trackingGradients(), bt = b.trackingGradients()
                let y = xt.groupNormSiLU(groupCount: 2, weight: wt, bias: bt)
                results.append([y.storage] + Tape.gradients(of: y, seed: seed, wrt: [xt, wt, bt]).map(\.storage))
            }
            for (what, pair) in zip(["y", "dx", "dw", "db"], zip(results[0], results[1])) {
                XCTAssertEqual(pair.0.map(\.bitPattern), pair.1.map(\.bitPattern), "groupNormSiLU \(what), planes of \(spatial)")
            }
        }
    }

    /// The AVX-512 sines and cosines within 2.5e-7 of Double's over the embedding's range and beyond the vector
    /// path's (|x| > 8192: the C library's), at lengths around the 16 lanes; zeros keep their sign, NaN and
    /// infinities give NaN.
    func testSinesAndCosinesAreAccurate() throws {
        guard NativePointwise.available else { throw XCTSkip("needs AVX-512") }
        var rng = SplitMix64(seed: 5)
        for (count, span) in [(1, Float(3)), (15, 2000), (16, 8192), (17, 1e5), (333, 1600), (4096, 8192), (64, 1e7)] {
            var x = (0..<count).map { _ in Float.random(in: -span...span, using: &rng) }
            if count > 8 { x[3] = -0.0; x[5] = 0; x[7] = 8192; x[8] = -8192.001 }
            var sines = [Float](repeating: 9, count: count), cosines = sines
            sinesAndCosines(x, sines: &sines, cosines: &cosines, count: count)
            for i in 0..<count {
                XCTAssertEqual(Double(sines[i]), sin(Double(x[i])), accuracy: 2.5e-7, "sin(\(x[i]))")
                XCTAssertEqual(Double(cosines[i]), cos(Double(x[i])), accuracy: 2.5e-7, "cos(\(x[i]))")
            }
            if count > 8 { XCTAssertEqual(sines[3].bitPattern, (-0.0 as Float).bitPattern, "sin(-0) is -0") }
        }
        let odd: [Float] = [.nan, .infinity, -.infinity]
        var sines = [Float](repeating: 0, count: 3), cosines = sines
        sinesAndCosines(odd, sines: &sines, cosines: &cosines, count: 3)
        XCTAssertTrue(sines.allSatisfy(\.isNaN) && cosines.allSatisfy(\.isNaN), "\(sines) \(cosines)")
    }

    func testFanOutGradientsAreSummed() {
        // y = x * x + x, so dy/dx = 2x + 1
        let x = Tensor(shape: [3], storage: [1, -2, 0.5]).trackingGradients()
        let g = Tape.gradients(of: (x * x + x).sum(), wrt: [x])[0]
        assertClose(g.storage, [3, -3, 2])
    }

    func testDetachedStopsGradient() {
        let x = Tensor(shape: [2], storage: [1, 2]).trackingGradients()
        let g = Tape.gradients(of: (x * x.detached()).sum(), wrt: [x])[0]
        assertClose(g.storage, [1, 2])   // d/dx (x * c) = c
    }
}
