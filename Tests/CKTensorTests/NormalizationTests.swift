// GroupNorm, fused GroupNorm+SiLU and LayerNorm: values against float64 loops, gradients by central differences.
import XCTest
import CKTensor
import CKTestSupport

final class NormalizationTests: XCTestCase {
    // MARK: - References (float64 loops, written from the definitions)

    /// (N, C, S...): per (sample, group), mean and biased variance over C/G channels x S.
    func referenceGroupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) -> [Float] {
        let n = x.shape[0], c = x.shape[1], s = x.count / (n * c), cg = c / groups
        var y = [Float](repeating: 0, count: x.count)
        for sample in 0..<n {
            for g in 0..<groups {
                let indices = (g * cg..<(g + 1) * cg).flatMap { ch in (0..<s).map { (sample * c + ch) * s + $0 } }
                let values = indices.map { Double(x.storage[$0]) }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                for i in indices {
                    let ch = (i / s) % c
                    let w = weight.map { Double($0.storage[ch]) } ?? 1, b = bias.map { Double($0.storage[ch]) } ?? 0
                    y[i] = Float((Double(x.storage[i]) - mean) / (variance + eps).squareRoot() * w + b)
                }
            }
        }
        return y
    }

    /// Per sample over the last `k` dims; weight and bias broadcast by index arithmetic (NumPy rules).
    func referenceLayerNorm(_ x: Tensor, k: Int, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) -> [Float] {
        let inner = Array(x.shape.suffix(k)), m = inner.reduce(1, *)
        func value(_ t: Tensor?, at flat: Int, default d: Double) -> Double {
            guard let t else { return d }
            // Index of `flat` (within the normalized shape) in t, whose shape right-aligns with `inner`.
            var rest = flat, index = 0, step = 1
            for axis in stride(from: inner.count - 1, through: 0, by: -1) {
                let coordinate = rest % inner[axis]
                rest /= inner[axis]
                let tAxis = axis - (inner.count - t.rank)
                if tAxis >= 0 {
                    if t.shape[tAxis] != 1 { index += coordinate * step }
                    step *= t.shape[tAxis]
                }
            }
            return Double(t.storage[index])
        }
        var y = [Float](repeating: 0, count: x.count)
        for row in 0..<(x.count / m) {
            let values = (0..<m).map { Double(x.storage[row * m + $0]) }
            let mean = values.reduce(0, +) / Double(m)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(m)
            for i in 0..<m {
                let xhat = (values[i] - mean) / (variance + eps).squareRoot()
                y[row * m + i] = Float(xhat * value(weight, at: i, default: 1) + value(bias, at: i, default: 0))
            }
        }
        return y
    }

    func normal(_ shape: [Int], seed: UInt64, scale: Float = 1, shift: Float = 0) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor.normal(shape: shape, rng: &rng) * scale + shift
    }

    // MARK: - GroupNorm

    func testGroupNormValues() {
        for (shape, groupCounts) in [([2, 8, 3, 5], [1, 2, 4, 8]), ([4, 6], [1, 3, 6]), ([3, 4, 7], [2])] {
            let c = shape[1]
            let x = normal(shape, seed: 1, scale: 2, shift: 3)
            let w = normal([c], seed: 2), b = normal([c], seed: 3)
            for g in groupCounts {
                assertClose(x.groupNorm(groupCount: g, weight: w, bias: b).storage,
                            referenceGroupNorm(x, groups: g, weight: w, bias: b), atol: 1e-5, rtol: 1e-4, "GN \(shape) G=\(g)")
                assertClose(x.groupNorm(groupCount: g, weight: nil, bias: nil).storage,
                            referenceGroupNorm(x, groups: g, weight: nil, bias: nil), atol: 1e-5, rtol: 1e-4, "GN plain \(shape) G=\(g)")
                assertClose(x.groupNorm(groupCount: g, weight: nil, bias: b).storage,
                            referenceGroupNorm(x, groups: g, weight: nil, bias: b), atol: 1e-5, rtol: 1e-4, "GN bias \(shape) G=\(g)")
            }
        }
    }

    func testGroupNormLargeSpansAndOffset() {
        // (2, 16, 40, 40): 8 groups of 3200 values, over the parallel threshold; values 1000 +- 1, where a
        // one-pass E[x^2] - E[x]^2 in float32 would lose the variance entirely.
        let x = normal([2, 16, 40, 40], seed: 4, shift: 1000)
        let w = normal([16], seed: 5), b = normal([16], seed: 6)
        assertClose(x.groupNorm(groupCount: 8, weight: w, bias: b).storage,
                    referenceGroupNorm(x, groups: 8, weight: w, bias: b), atol: 5e-4, rtol: 1e-3)
        // A constant group normalizes to 0 (variance 0, eps keeps it finite): y = b.
        let constant = Tensor(repeating: 7, shape: [1, 4, 3, 3])
        let bias = Tensor(shape: [4], storage: [1, 2, 3, 4])
        assertClose(constant.groupNorm(groupCount: 2, weight: nil, bias: bias).storage,
                    (0..<36).map { Float($0 / 9 + 1) })
    }

    func testGroupNormGradients() {
        gradCheck(shapes: [[2, 4, 3, 3], [4], [4]]) { $0[0].groupNorm(groupCount: 2, weight: $0[1], bias: $0[2]) }
        gradCheck(shapes: [[3, 6], [6], [6]]) { $0[0].groupNorm(groupCount: 3, weight: $0[1], bias: $0[2]) }
        gradCheck(shapes: [[2, 4, 5]]) { $0[0].groupNorm(groupCount: 1, weight: nil, bias: nil) }
        gradCheck(shapes: [[2, 4, 2, 3], [4]]) { $0[0].groupNorm(groupCount: 4, weight: $0[1], bias: nil) }
    }

    // MARK: - GroupNorm + SiLU

    func testGroupNormSiLUGradients() {
        gradCheck(shapes: [[2, 4, 3, 3], [4], [4]]) { $0[0].groupNormSiLU(groupCount: 2, weight: $0[1], bias: $0[2]) }
        gradCheck(shapes: [[3, 6], [6], [6]]) { $0[0].groupNormSiLU(groupCount: 3, weight: $0[1], bias: $0[2]) }
        gradCheck(shapes: [[2, 4, 5]]) { $0[0].groupNormSiLU(groupCount: 2, weight: nil, bias: nil) }
    }

    /// Values and all three gradients of the fused op equal those of groupNorm(...).silu(), for spans that
    /// are and are not multiples of 8, and above the parallel threshold.
    func testGroupNormSiLUMatchesComposition() {
        for (shape, groups) in [([2, 16, 7, 9], 8), ([3, 32, 8, 8], 8), ([4, 64, 14, 14], 8), ([5, 12], 4)] {
            let c = shape[1]
            let x = normal(shape, seed: 7, scale: 3, shift: 1).trackingGradients()
            let w = normal([c], seed: 8, scale: 2).trackingGradients(), b = normal([c], seed: 9).trackingGradients()
            let fused = x.groupNormSiLU(groupCount: groups, weight: w, bias: b)
            let composed = x.groupNorm(groupCount: groups, weight: w, bias: b).silu()
            assertClose(fused.storage, composed.storage, atol: 1e-5, rtol: 1e-5, "values \(shape)")
            let seed = normal(shape, seed: 10)
            let gf = Tape.gradients(of: fused, seed: seed, wrt: [x, w, b])
            let gc = Tape.gradients(of: composed, seed: seed, wrt: [x, w, b])
            for (k, name) in ["x", "weight", "bias"].enumerated() {
                assertClose(gf[k].storage, gc[k].storage, atol: 1e-4, rtol: 1e-4, "d\(name) \(shape)")
            }
        }
    }

    /// Only some inputs on the graph: the kernels skip the others, and what they do compute still matches.
    func testPartialGradients() {
        let x = normal([2, 8, 5, 5], seed: 11), seed = normal([2, 8, 5, 5], seed: 12)
        let w = normal([8], seed: 13).trackingGradients(), b = normal([8], seed: 14)
        let xt = x.trackingGradients(), wc = w.detached(), bt = b.trackingGradients()
        for silu in [false, true] {
            func f(_ x: Tensor, _ w: Tensor, _ b: Tensor) -> Tensor {
                silu ? x.groupNormSiLU(groupCount: 4, weight: w, bias: b) : x.groupNorm(groupCount: 4, weight: w, bias: b).silu()
            }
            let reference = Tape.gradients(of: x.groupNorm(groupCount: 4, weight: w, bias: bt).silu(), seed: seed, wrt: [w, bt])
            let onlyW = Tape.gradients(of: f(x, w, b), seed: seed, wrt: [w])[0]     // x and b constant
            assertClose(onlyW.storage, reference[0].storage, atol: 1e-4, rtol: 1e-4, "dw alone, silu \(silu)")
            let onlyB = Tape.gradients(of: f(x, wc, bt), seed: seed, wrt: [bt])[0]
            assertClose(onlyB.storage, reference[1].storage, atol: 1e-4, rtol: 1e-4, "db alone, silu \(silu)")
            let xAlone = Tape.gradients(of: f(xt, wc, b), seed: seed, wrt: [xt])[0]
            let xComposed = Tape.gradients(of: xt.groupNorm(groupCount: 4, weight: wc, bias: b).silu(), seed: seed, wrt: [xt])[0]
            assertClose(xAlone.storage, xComposed.storage, atol: 1e-4, rtol: 1e-4, "dx alone, silu \(silu)")
        }
    }

    // MARK: - LayerNorm

    func testLayerNormValues() {
        let x = normal([3, 4, 5, 6], seed: 15, scale: 2, shift: -1)
        let cases: [(String, Int, Tensor?, Tensor?)] = [
            ("full affine (C, H, W)", 3, normal([4, 5, 6], seed: 16), normal([4, 5, 6], seed: 17)),
            ("per-channel bias only (C, 1, 1): NSLN", 3, nil, normal([4, 1, 1], seed: 18)),
            ("none", 3, nil, nil),
            ("last dim, (W) affine", 1, normal([6], seed: 19), normal([6], seed: 20)),
            ("last two dims, weight (W) only", 2, normal([6], seed: 21), nil),
            ("all four dims", 4, nil, nil),
        ]
        for (name, k, w, b) in cases {
            assertClose(x.layerNorm(normalizedRank: k, weight: w, bias: b).storage,
                        referenceLayerNorm(x, k: k, weight: w, bias: b), atol: 1e-5, rtol: 1e-4, name)
        }
        let big = normal([2, 32, 30, 30], seed: 22, shift: 500)        // parallel path, large offset
        let nsBias = normal([32, 1, 1], seed: 23)
        assertClose(big.layerNorm(normalizedRank: 3, weight: nil, bias: nsBias).storage,
                    referenceLayerNorm(big, k: 3, weight: nil, bias: nsBias), atol: 5e-4, rtol: 1e-3, "large")
    }

    func testLayerNormGradients() {
        gradCheck(shapes: [[2, 3, 2, 3], [3, 2, 3], [3, 2, 3]]) { $0[0].layerNorm(normalizedRank: 3, weight: $0[1], bias: $0[2]) }
        gradCheck(shapes: [[2, 3, 2, 3], [3, 1, 1]]) { $0[0].layerNorm(normalizedRank: 3, weight: nil, bias: $0[1]) }
        gradCheck(shapes: [[2, 3, 2, 3]]) { $0[0].layerNorm(normalizedRank: 3, weight: nil, bias: nil) }
        gradCheck(shapes: [[4, 5], [5], [1]]) { $0[0].layerNorm(normalizedRank: 1, weight: $0[1], bias: $0[2]) }
        gradCheck(shapes: [[2, 3, 4], [3, 1]]) { $0[0].layerNorm(normalizedRank: 2, weight: $0[1], bias: nil) }
    }

    /// The fused LayerNorm equals its composition from primitives (mean, variance, broadcasting ops),
    /// values and gradients, on a size above the parallel thresholds.
    func testLayerNormMatchesComposition() {
        let x = normal([4, 16, 24, 24], seed: 24, scale: 2).trackingGradients()
        let w = normal([16, 1, 1], seed: 25).trackingGradients(), b = normal([16, 24, 24], seed: 26).trackingGradients()
        let fused = x.layerNorm(normalizedRank: 3, weight: w, bias: b)
        let mean = x.mean(alongAxes: [1, 2, 3], keepingDimensions: true)
        let centered = x - mean
        let variance = centered.squared().mean(alongAxes: [1, 2, 3], keepingDimensions: true)
        let composed = centered / (variance + 1e-5).sqrt() * w + b
        assertClose(fused.storage, composed.storage, atol: 1e-4, rtol: 1e-4, "values")
        let seed = normal(x.shape, seed: 27)
        let gf = Tape.gradients(of: fused, seed: seed, wrt: [x, w, b])
        let gc = Tape.gradients(of: composed, seed: seed, wrt: [x, w, b])
        for (k, name) in ["x", "weight", "bias"].enumerated() {
            assertClose(gf[k].storage, gc[k].storage, atol: 1e-3, rtol: 1e-3, "d\(name)")
        }
    }
}
