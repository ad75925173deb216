// conv2d: values and hand-written gradients against a direct loop convolution, and central-difference checks.
import XCTest
import CKWinograd
@testable import CKTensor
import CKTestSupport

/// Direct convolution in Double, PyTorch semantics: y[n,co,oy,ox] = b[co] + sum w[co,ci,a,b] x[n,ci,oy s-p+a, ox s-p+b].
private func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride s: Int, padding p: Int) -> [Float] {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let ho = (h + 2 * p - kh) / s + 1, wo = (wd + 2 * p - kw) / s + 1
    var y = [Float](repeating: 0, count: n * cout * ho * wo)
    for i in 0..<n {
        for co in 0..<cout {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    var acc = Double(b?.storage[co] ?? 0)
                    for ci in 0..<cin {
                        for a in 0..<kh {
                            for c in 0..<kw {
                                let iy = oy * s - p + a, ix = ox * s - p + c
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                acc += Double(w.storage[((co * cin + ci) * kh + a) * kw + c])
                                    * Double(x.storage[((i * cin + ci) * h + iy) * wd + ix])
                            }
                        }
                    }
                    y[((i * cout + co) * ho + oy) * wo + ox] = Float(acc)
                }
            }
        }
    }
    return y
}

/// Gradients of sum(y * g) by the same loops: dx and dw collect every product that used them, db sums g.
private func naiveConvGradients(_ x: Tensor, _ w: Tensor, _ g: Tensor, stride s: Int, padding p: Int)
    -> (dx: [Float], dw: [Float], db: [Float]) {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let (ho, wo) = (g.shape[2], g.shape[3])
    var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
    var db = [Double](repeating: 0, count: cout)
    for i in 0..<n {
        for co in 0..<cout {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let gv = Double(g.storage[((i * cout + co) * ho + oy) * wo + ox])
                    db[co] += gv
                    for ci in 0..<cin {
                        for a in 0..<kh {
                            for c in 0..<kw {
                                let iy = oy * s - p + a, ix = ox * s - p + c
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                let xi = ((i * cin + ci) * h + iy) * wd + ix, wi = ((co * cin + ci) * kh + a) * kw + c
                                dx[xi] += gv * Double(w.storage[wi])
                                dw[wi] += gv * Double(x.storage[xi])
                            }
                        }
                    }
                }
            }
        }
    }
    return (dx.map(Float.init), dw.map(Float.init), db.map(Float.init))
}

final class Conv2DTests: XCTestCase {
    /// Runs `body` with chunks of two samples, so a batch of three or more takes several GEMMs
    /// (and an odd batch a short last chunk).
    private func withTwoSampleChunks(input: [Int], weight: [Int], stride: Int, padding: Int, _ body: () -> Void) {
        let geo = ConvGeometry(input: input, weight: weight, stride: stride, padding: padding)
        let saved = (ConvTuning.chunkFloats, ConvTuning.winogradChunkFloats)
        ConvTuning.chunkFloats = 2 * max(geo.k, geo.cout, geo.cin) * geo.p
        ConvTuning.winogradChunkFloats = 2 * 16 * max(geo.cout, geo.cin) * geo.winogradTiles
        defer { (ConvTuning.chunkFloats, ConvTuning.winogradChunkFloats) = saved }
        XCTAssertEqual(geo.chunkSize, 2, "chunking not exercised for \(input) * \(weight)")
        body()
    }

    private func checkValues(n: Int, cin: Int, cout: Int, h: Int, w: Int, k: (Int, Int), stride: Int, padding: Int,
                             bias: Bool, expectedOut: (Int, Int), file: StaticString = #filePath, line: UInt = #line) {
        var rng = SplitMix64(seed: UInt64(h * 1000 + w * 10 + stride))
        let x = Tensor.normal(shape: [n, cin, h, w], rng: &rng)
        let wt = Tensor.normal(shape: [cout, cin, k.0, k.1], rng: &rng)
        let b: Tensor? = bias ? Tensor.normal(shape: [cout], rng: &rng) : nil
        let want = naiveConv(x, wt, b, stride: stride, padding: padding)
        let label = "\(k.0)x\(k.1) s\(stride) p\(padding) \(h)x\(w) bias \(bias)"
        // Whole batch in one chunk, then two samples per chunk.
        let y1 = x.conv2d(weight: wt, bias: b, stride: stride, padding: padding)
        XCTAssertEqual(y1.shape, [n, cout, expectedOut.0, expectedOut.1], label, file: file, line: line)
        assertClose(y1.storage, want, atol: 1e-4, rtol: 1e-4, label, file: file, line: line)
        withTwoSampleChunks(input: x.shape, weight: wt.shape, stride: stride, padding: padding) {
            let y2 = x.conv2d(weight: wt, bias: b, stride: stride, padding: padding)
            assertClose(y2.storage, want, atol: 1e-4, rtol: 1e-4, label + " chunked", file: file, line: line)
        }
    }

    func testForward3x3Stride1Pad1() {
        checkValues(n: 5, cin: 3, cout: 4, h: 6, w: 5, k: (3, 3), stride: 1, padding: 1, bias: true, expectedOut: (6, 5))
        checkValues(n: 5, cin: 3, cout: 4, h: 6, w: 5, k: (3, 3), stride: 1, padding: 1, bias: false, expectedOut: (6, 5))
        checkValues(n: 3, cin: 2, cout: 5, h: 28, w: 28, k: (3, 3), stride: 1, padding: 1, bias: true, expectedOut: (28, 28))
    }

    func testForward3x3Stride2Pad1() {
        checkValues(n: 5, cin: 3, cout: 4, h: 7, w: 7, k: (3, 3), stride: 2, padding: 1, bias: true, expectedOut: (4, 4))
        checkValues(n: 3, cin: 2, cout: 3, h: 28, w: 28, k: (3, 3), stride: 2, padding: 1, bias: false, expectedOut: (14, 14))
        checkValues(n: 3, cin: 2, cout: 3, h: 6, w: 8, k: (3, 3), stride: 2, padding: 1, bias: true, expectedOut: (3, 4))
    }

    func testForward1x1() {
        checkValues(n: 5, cin: 6, cout: 4, h: 5, w: 7, k: (1, 1), stride: 1, padding: 0, bias: true, expectedOut: (5, 7))
        checkValues(n: 5, cin: 3, cout: 7, h: 4, w: 4, k: (1, 1), stride: 1, padding: 0, bias: false, expectedOut: (4, 4))
    }

    func testForwardGeneralKernels() {
        // Non-square kernel, stride 3, padding 2, and a kernel with no padding that shrinks the image.
        checkValues(n: 3, cin: 2, cout: 3, h: 11, w: 9, k: (5, 3), stride: 3, padding: 2, bias: true, expectedOut: (4, 4))
        checkValues(n: 3, cin: 2, cout: 3, h: 8, w: 6, k: (3, 3), stride: 1, padding: 0, bias: true, expectedOut: (6, 4))
        checkValues(n: 4, cin: 2, cout: 2, h: 5, w: 5, k: (1, 1), stride: 2, padding: 1, bias: false, expectedOut: (4, 4))
    }

    /// Backward values at sizes beyond gradCheck's reach (many channels, several chunks).
    func testBackwardAgainstLoops() {
        for (h, stride, k, padding) in [(9, 1, 3, 1), (9, 2, 3, 1), (8, 2, 3, 1), (7, 1, 1, 0)] {
            var rng = SplitMix64(seed: UInt64(10 * h + stride))
            let x = Tensor.normal(shape: [5, 9, h, h], rng: &rng)
            let w = Tensor.normal(shape: [11, 9, k, k], rng: &rng)
            let b = Tensor.normal(shape: [11], rng: &rng)
            let label = "\(k)x\(k) s\(stride) p\(padding) \(h)x\(h)"
            withTwoSampleChunks(input: x.shape, weight: w.shape, stride: stride, padding: padding) {
                let (tx, tw, tb) = (x.trackingGradients(), w.trackingGradients(), b.trackingGradients())
                let y = tx.conv2d(weight: tw, bias: tb, stride: stride, padding: padding)
                let g = Tensor.normal(shape: y.shape, rng: &rng)
                let got = Tape.gradients(of: y, seed: g, wrt: [tx, tw, tb])
                let want = naiveConvGradients(x, w, g, stride: stride, padding: padding)
                assertClose(got[0].storage, want.dx, atol: 1e-3, rtol: 1e-4, "dx " + label)
                assertClose(got[1].storage, want.dw, atol: 1e-3, rtol: 1e-4, "dw " + label)
                assertClose(got[2].storage, want.db, atol: 1e-3, rtol: 1e-4, "db " + label)
            }
        }
    }

    /// A single sample is one chunk: the kernels then split their own loops over the threads instead.
    func testSingleSampleLargePlane() {
        for (stride, k, padding) in [(1, 3, 1), (2, 3, 1), (1, 1, 0)] {
            var rng = SplitMix64(seed: UInt64(3 + stride + k))
            let x = Tensor.normal(shape: [1, 12, 28, 28], rng: &rng), w = Tensor.normal(shape: [6, 12, k, k], rng: &rng)
            let b = Tensor.normal(shape: [6], rng: &rng)
            let (tx, tw) = (x.trackingGradients(), w.trackingGradients())
            let y = tx.conv2d(weight: tw, bias: b, stride: stride, padding: padding)
            let label = "\(k)x\(k) s\(stride) 28x28 N=1"
            assertClose(y.storage, naiveConv(x, w, b, stride: stride, padding: padding), atol: 1e-4, rtol: 1e-4, label)
            let g = Tensor.normal(shape: y.shape, rng: &rng)
            let got = Tape.gradients(of: y, seed: g, wrt: [tx, tw])
            let want = naiveConvGradients(x, w, g, stride: stride, padding: padding)
            assertClose(got[0].storage, want.dx, atol: 1e-3, rtol: 1e-4, "dx " + label)
            assertClose(got[1].storage, want.dw, atol: 1e-3, rtol: 1e-4, "dw " + label)
        }
    }

    func testEmptyBatch() {
        let x = Tensor(zeros: [0, 2, 5, 5]).trackingGradients(), w = Tensor(repeating: 1, shape: [3, 2, 3, 3]).trackingGradients()
        let y = x.conv2d(weight: w, bias: nil, padding: 1)
        XCTAssertEqual(y.shape, [0, 3, 5, 5])
        let grads = Tape.gradients(of: y.sum(), wrt: [x, w])
        assertClose(grads[1].storage, [Float](repeating: 0, count: w.count), "dw of an empty batch")
    }

    func testGradCheck3x3Stride1() {
        let shapes = [[3, 2, 5, 4], [3, 2, 3, 3], [3]]
        withTwoSampleChunks(input: shapes[0], weight: shapes[1], stride: 1, padding: 1) {
            gradCheck(shapes: shapes) { $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 1, padding: 1) }
            gradCheck(shapes: Array(shapes.prefix(2))) { $0[0].conv2d(weight: $0[1], bias: nil, stride: 1, padding: 1) }
        }
    }

    func testGradCheck3x3Stride2() {
        for size in [5, 6] {    // odd and even: the last row/column is read by one tap or by two
            let shapes = [[3, 2, size, size], [2, 2, 3, 3], [2]]
            withTwoSampleChunks(input: shapes[0], weight: shapes[1], stride: 2, padding: 1) {
                gradCheck(shapes: shapes) { $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1) }
            }
        }
    }

    func testGradCheck1x1() {
        let shapes = [[3, 3, 3, 4], [4, 3, 1, 1], [4]]
        withTwoSampleChunks(input: shapes[0], weight: shapes[1], stride: 1, padding: 0) {
            gradCheck(shapes: shapes) { $0[0].conv2d(weight: $0[1], bias: $0[2]) }
        }
    }

    func testGradCheckGeneralKernel() {
        gradCheck(shapes: [[2, 2, 7, 5], [2, 2, 3, 2], [2]]) { $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 2) }
    }

    /// Runs `body` with the Winograd kernel forced on or off for every 3x3 stride-1 pad-1 shape.
    private func withWinograd(_ mode: ConvTuning.Winograd, _ body: () -> Void) {
        let saved = ConvTuning.winograd
        ConvTuning.winograd = mode
        defer { ConvTuning.winograd = saved }
        body()
    }

    /// Runs `body` once with each transform implementation this build has: CKWinograd's AVX2 transforms
    /// (x86-64) and the portable Swift ones.
    private func withEachTransformPath(_ body: (String) -> Void) {
        withEachImplementation(ConvTuning.nativeTransforms, set: { ConvTuning.nativeTransforms = $0 },
                               names: ("avx2 transforms", "swift transforms"), body)
    }

    /// conv3x3 pad 1 of x, its dX, dW and dB against the Double loops (a random output gradient from rng); returns y.
    @discardableResult
    private func checkAgainstLoops(_ x: Tensor, _ wt: Tensor, _ b: Tensor, tolerance: Float, rng: inout SplitMix64,
                                   _ label: String) -> Tensor {
        let (tx, tw, tb) = (x.trackingGradients(), wt.trackingGradients(), b.trackingGradients())
        let y = tx.conv2d(weight: tw, bias: tb, padding: 1)
        assertClose(y.storage, naiveConv(x, wt, b, stride: 1, padding: 1), atol: tolerance, rtol: 1e-4, label)
        let g = Tensor.normal(shape: y.shape, rng: &rng)
        let got = Tape.gradients(of: y, seed: g, wrt: [tx, tw, tb])
        let want = naiveConvGradients(x, wt, g, stride: 1, padding: 1)
        assertClose(got[0].storage, want.dx, atol: 10 * tolerance, rtol: 1e-4, "dx " + label)
        assertClose(got[1].storage, want.dw, atol: 1e-3, rtol: 1e-4, "dw " + label)
        assertClose(got[2].storage, want.db, atol: 1e-3, rtol: 1e-4, "db " + label)
        return y
    }

    /// The Winograd kernels (F(2x2,3x3) and F(4x4,3x3), each for forward, dX and dW) against the Double
    /// loops, at odd and even sizes down to 2x2, one channel, channel counts that are not multiples of 8, planes
    /// wider than one group of 8 tiles, in chunks; with each transform implementation.
    /// F(4x4)'s transforms have entries up to 8 and 1/24: on these shapes its largest forward error was 9e-5 against
    /// F(2x2)'s 8e-6, so each bound sits about ten times above what was observed.
    func testWinogradAgainstLoops() {
        let shapes = [(2, 1, 3, 2, 2), (3, 5, 7, 3, 3), (2, 9, 4, 7, 7), (3, 3, 10, 6, 5), (2, 4, 3, 28, 28),
                      (1, 17, 9, 14, 14), (4, 8, 8, 13, 11), (3, 2, 1, 9, 17), (3, 6, 5, 36, 33), (1, 2, 3, 5, 70)]
        withEachTransformPath { path in
        for (mode, tolerance) in [(ConvTuning.Winograd.always, Float(1e-4)), (.largeTiles, 1e-3)] {
          withWinograd(mode) {
            for (n, cin, cout, h, w) in shapes {
                var rng = SplitMix64(seed: UInt64(h * 100 + w + cin))
                let x = Tensor.normal(shape: [n, cin, h, w], rng: &rng), wt = Tensor.normal(shape: [cout, cin, 3, 3], rng: &rng)
                let b = Tensor.normal(shape: [cout], rng: &rng)
                let geo = ConvGeometry(input: x.shape, weight: wt.shape, stride: 1, padding: 1)
                XCTAssertTrue(geo.usesWinograd, "\(x.shape) should take the Winograd kernel")
                XCTAssertEqual(geo.usesWinogradF43, mode == .largeTiles)
                let label = "winograd \(mode) \(path) \(cin)->\(cout) \(h)x\(w) N=\(n)"
                let y = checkAgainstLoops(x, wt, b, tolerance: tolerance, rng: &rng, label)
                guard n >= 3 else { continue }
                withTwoSampleChunks(input: x.shape, weight: wt.shape, stride: 1, padding: 1) {
                    assertClose(x.conv2d(weight: wt, bias: b, padding: 1).storage, y.storage, atol: 1e-5, rtol: 1e-5, label + " chunked")
                }
            }
          }
        }
        }
    }

    /// The products with Cout in ck_sgemm's lanes and the output transform that reads them channels last (Cout a
    /// multiple of 16; dX takes them where Cin is): forward, dX and dW against the Double loops, at 32 + 16 columns
    /// (two panels), planes cropped by both tile sizes, chunks on both threads, and at one thread, where a single
    /// chunk takes the path too.
    func testWinogradChannelsLastProducts() throws {
        guard OwnGEMM.runs, ConvTuning.nativeTransforms else { throw XCTSkip("needs AVX-512 and the AVX2 transforms") }
        let shapes = [(2, 3, 16, 6, 5), (3, 16, 48, 13, 11), (2, 32, 32, 28, 28), (1, 16, 16, 9, 17), (3, 5, 64, 14, 14)]
        for threads in [2, 1] {
            withThreads(threads) {
                for (mode, tolerance) in [(ConvTuning.Winograd.always, Float(1e-4)), (.largeTiles, 1e-3)] {
                    withWinograd(mode) {
                        for (n, cin, cout, h, w) in shapes {
                            var rng = SplitMix64(seed: UInt64(h * 100 + w + cin + cout))
                            let x = Tensor.normal(shape: [n, cin, h, w], rng: &rng), wt = Tensor.normal(shape: [cout, cin, 3, 3], rng: &rng)
                            let b = Tensor.normal(shape: [cout], rng: &rng)
                            let geo = ConvGeometry(input: x.shape, weight: wt.shape, stride: 1, padding: 1)
                            let kernel = try! XCTUnwrap(geo.winogradKernel)
                            XCTAssertNotNil(winogradWeightPanels(geo, kernel, u: [Float](repeating: 0, count: kernel.points * cout * cin)),
                                            "\(cin)->\(cout) should take the channels-last products")
                            let label = "channels last \(mode) \(threads) threads \(cin)->\(cout) \(h)x\(w) N=\(n)"
                            checkAgainstLoops(x, wt, b, tolerance: tolerance, rng: &rng, label)
                        }
                    }
                }
            }
        }
        // Where the products stay (Cout, T): Cout not a multiple of 16, or OpenBLAS chosen.
        let geo = ConvGeometry(input: [2, 16, 14, 14], weight: [24, 16, 3, 3], stride: 1, padding: 1)
        XCTAssertNil(winogradWeightPanels(geo, try XCTUnwrap(geo.winogradKernel), u: [Float](repeating: 0, count: 16 * 24 * 16)))
        OwnGEMM.runs = false
        defer { OwnGEMM.runs = true }
        let wide = ConvGeometry(input: [2, 16, 14, 14], weight: [32, 16, 3, 3], stride: 1, padding: 1)
        XCTAssertNil(winogradWeightPanels(wide, try XCTUnwrap(wide.winogradKernel), u: [Float](repeating: 0, count: 16 * 32 * 16)))
    }

    /// The channels-last output transforms (C) against the (Cout, T) ones on the same products transposed, over
    /// plane ranges that split groups of 8 channels (5 and 11 channels: the one-channel path beside the 8-channel
    /// one; in AVX-512, the masked last group of 16), planes cropped by the tile, with and without bias.
    func testChannelsLastOutputTransforms() throws {
        guard ConvTuning.nativeTransforms else { throw XCTSkip("needs the AVX2 transforms") }
        typealias Pair = (side: Int, channelsLast: ChannelsLastOutputTransform, tileMajor: PlaneOutputTransform)
        var pairs: [Pair] = [(4, ck_f43_output_channels_last, ck_f43_output), (2, ck_f22_output_channels_last, ck_f22_output)]
        if ck_winograd_avx512_available() != 0 { pairs.append((4, ck_f43_output_channels_last_avx512, ck_f43_output)) }
        for (side, channelsLast, tileMajor) in pairs {
            for (n, channels, h, w) in [(2, 5, 9, 7), (3, 11, 8, 8), (1, 16, 14, 13)] {
                let tiles = ((h + side - 1) / side) * ((w + side - 1) / side), t = n * tiles, points = (side + 2) * (side + 2)
                var rng = SplitMix64(seed: UInt64(side * 1000 + channels * 10 + h))
                let last = Tensor.normal(shape: [points * t * channels], rng: &rng).storage
                var major = [Float](repeating: 0, count: points * channels * t + winogradSlack)
                for e in 0..<points { for tile in 0..<t { for c in 0..<channels {
                    major[(e * channels + c) * t + tile] = last[(e * t + tile) * channels + c]
                } } }
                let planes = n * channels, bias = Tensor.normal(shape: [planes], rng: &rng).storage
                for withBias in [true, false] {
                    var want = [Float](repeating: .nan, count: planes * h * w), got = want
                    var products = major          // the (Cout, T) transform zeroes what it reads
                    bias.withUnsafeBufferPointer { bp in
                        let b = withBias ? bp.baseAddress : nil
                        tileMajor(&products, &want, h, w, channels, t, b, 0, planes)
                        for (first, end) in [(0, 3), (3, 12), (12, planes)] where first < min(end, planes) {
                            channelsLast(last, &got, h, w, channels, t, b, first, min(end, planes))
                        }
                    }
                    assertClose(got, want, atol: 1e-4, rtol: 1e-5, "F(\(side)x\(side)) \(channels) channels \(h)x\(w) N=\(n) bias \(withBias)")
                }
            }
        }
    }

    /// F(4x4)'s AVX-512 transforms give the AVX2 ones' bits. Input: planes of 1x1 up to wider than one group of 8
    /// tiles (several groups, a partial last one), heights not multiples of 4, inputs with zeros, infinities and NaN,
    /// over plane ranges that start and end mid-sample; every float of V compared, the untouched ones included.
    /// Output from channels-last products: 16 to 64 channels, planes cropped by the tile, with and without bias, over
    /// plane ranges that start and end on multiples of 8 channels (elsewhere the AVX2 version's last channels take a
    /// scalar loop with other roundings; `testChannelsLastOutputTransforms` bounds those).
    func testAVX512TransformsGiveTheAVX2Bits() throws {
        guard ConvTuning.nativeTransforms, ck_winograd_avx512_available() != 0 else { throw XCTSkip("needs AVX-512") }
        func firstDifference(_ a: [Float], _ b: [Float]) -> Int? { a.indices.first { a[$0].bitPattern != b[$0].bitPattern } }
        for (n, channels, h, w) in [(1, 1, 1, 1), (2, 3, 2, 2), (3, 5, 3, 5), (2, 3, 7, 7), (2, 3, 13, 11), (1, 2, 36, 33),
                                    (1, 2, 5, 70), (2, 4, 28, 28), (1, 3, 14, 14), (1, 2, 9, 64), (2, 1, 4, 129)] {
            let tiles = ((h + 3) / 4) * ((w + 3) / 4), t = n * tiles, planes = n * channels
            var rng = SplitMix64(seed: UInt64(h * 1000 + w * 10 + channels))
            var x = Tensor.normal(shape: [planes * h * w], rng: &rng).storage
            if x.count > 7 { x[1] = .infinity; x[x.count / 2] = .nan; x[x.count - 2] = 0 }
            var avx2 = [Float](repeating: -7, count: 36 * channels * t + winogradSlack), avx512 = avx2
            ck_f43_input(x, &avx2, h, w, channels, t, 0, planes)
            for (first, end) in [(0, 1), (1, planes / 2 + 1), (planes / 2 + 1, planes)] where first < end {
                ck_f43_input_avx512(x, &avx512, h, w, channels, t, first, end)
            }
            let label = "input: \(n) x \(channels) planes of \(h)x\(w)"
            XCTAssertNil(firstDifference(avx2, avx512), label + ": first differing float (of \(avx2.count))")
            XCTAssertFalse(avx2.prefix(36 * channels * t).contains(-7), label + ": every point written")
        }
        for (n, channels, h, w, ranges) in [(2, 16, 5, 7, [(0, 32)]), (3, 32, 13, 11, [(0, 8), (8, 56), (56, 96)]),
                                            (2, 48, 9, 17, [(8, 80)]), (1, 16, 2, 2, [(0, 16)]), (2, 64, 28, 28, [(0, 128)]),
                                            (3, 24, 6, 6, [(8, 40), (40, 72)])] {
            let tiles = ((h + 3) / 4) * ((w + 3) / 4), t = n * tiles, planes = n * channels
            var rng = SplitMix64(seed: UInt64(channels * 100 + h))
            let products = Tensor.normal(shape: [36 * t * channels], rng: &rng).storage
            let bias = Tensor.normal(shape: [planes], rng: &rng).storage
            for withBias in [true, false] {
                var avx2 = [Float](repeating: -7, count: planes * h * w), avx512 = avx2
                bias.withUnsafeBufferPointer { bp in
                    for (first, end) in ranges {
                        ck_f43_output_channels_last(products, &avx2, h, w, channels, t, withBias ? bp.baseAddress : nil, first, end)
                        ck_f43_output_channels_last_avx512(products, &avx512, h, w, channels, t, withBias ? bp.baseAddress : nil, first, end)
                    }
                }
                let label = "output: \(n) x \(channels) planes of \(h)x\(w), ranges \(ranges), bias \(withBias)"
                XCTAssertNil(firstDifference(avx2, avx512), label + ": first differing float (of \(avx2.count))")
                XCTAssertEqual(avx512.filter { $0 == -7 }.count, planes * h * w - ranges.map { ($0.1 - $0.0) * h * w }.reduce(0, +),
                               label + ": the planes in range written, no other")
            }
        }
    }

    func testGradCheckWinograd() {
        withEachTransformPath { _ in
            for mode in [ConvTuning.Winograd.always, .largeTiles] {
                withWinograd(mode) {
                    for shapes in [[[3, 2, 5, 4], [3, 2, 3, 3], [3]], [[2, 3, 2, 2], [2, 3, 3, 3], [2]], [[2, 2, 9, 6], [2, 2, 3, 3], [2]]] {
                        gradCheck(shapes: shapes) { $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 1, padding: 1) }
                    }
                }
            }
        }
    }

    /// The measured default: Winograd from 14x14 planes up, im2col below and for every other kernel shape.
    func testWinogradIsChosenPerShape() {
        withWinograd(.auto) {
            func uses(_ input: [Int], _ weight: [Int], stride: Int = 1, padding: Int = 1) -> Bool {
                ConvGeometry(input: input, weight: weight, stride: stride, padding: padding).usesWinograd
            }
            XCTAssertTrue(uses([64, 32, 28, 28], [32, 32, 3, 3]))
            XCTAssertTrue(ConvGeometry(input: [64, 32, 28, 28], weight: [32, 32, 3, 3], stride: 1, padding: 1).usesWinogradF43)
            XCTAssertFalse(ConvGeometry(input: [64, 64, 14, 14], weight: [64, 64, 3, 3], stride: 1, padding: 1).usesWinogradF43)
            XCTAssertTrue(uses([64, 64, 14, 14], [64, 64, 3, 3]))
            XCTAssertFalse(uses([64, 64, 7, 7], [64, 64, 3, 3]))
            XCTAssertFalse(uses([64, 32, 28, 28], [32, 32, 3, 3], stride: 2))
            XCTAssertFalse(uses([64, 32, 28, 28], [32, 32, 1, 1], padding: 0))
        }
        withWinograd(.never) { XCTAssertFalse(ConvGeometry(input: [4, 8, 28, 28], weight: [8, 8, 3, 3], stride: 1, padding: 1).usesWinograd) }
    }

    /// A sample bias (N, Cout) equals adding it over each output plane afterwards, in value and in all four
    /// gradients, on every path: Winograd F(4x4) and F(2x2) (each transform implementation), im2col (stride 2,
    /// a 5x5 kernel), 1x1, chunked; with and without the channel bias. Then finite differences.
    func testSampleBiasMatchesAddingItAfterwards() {
        let cases: [(shape: [Int], weight: [Int], stride: Int, padding: Int)] = [
            ([3, 4, 28, 28], [5, 4, 3, 3], 1, 1), ([3, 3, 14, 14], [6, 3, 3, 3], 1, 1), ([5, 2, 7, 7], [3, 2, 3, 3], 1, 1),
            ([3, 2, 9, 8], [4, 2, 3, 3], 2, 1), ([2, 3, 6, 7], [2, 3, 5, 5], 1, 2), ([4, 6, 5, 5], [3, 6, 1, 1], 1, 0)]
        withEachTransformPath { path in
            for c in cases {
                for withBias in [true, false] {
                    var rng = SplitMix64(seed: UInt64(c.shape[2] * 10 + c.weight[2]))
                    let x = Tensor.normal(shape: c.shape, rng: &rng).trackingGradients()
                    let w = Tensor.normal(shape: c.weight, rng: &rng).trackingGradients()
                    let b = withBias ? Tensor.normal(shape: [c.weight[0]], rng: &rng).trackingGradients() : nil
                    let s = Tensor.normal(shape: [c.shape[0], c.weight[0]], rng: &rng).trackingGradients()
                    let label = "\(path) \(c.shape) * \(c.weight) stride \(c.stride) bias \(withBias)"
                    let fused = x.conv2d(weight: w, bias: b, sampleBias: s, stride: c.stride, padding: c.padding)
                    let added = x.conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding)
                        + s.reshaped([c.shape[0], c.weight[0], 1, 1])
                    assertClose(fused.storage, added.storage, atol: 1e-5, rtol: 1e-5, label)
                    let seed = Tensor.normal(shape: fused.shape, rng: &rng)
                    let wrt = [x, w, s] + (b.map { [$0] } ?? [])
                    let got = Tape.gradients(of: fused, seed: seed, wrt: wrt), want = Tape.gradients(of: added, seed: seed, wrt: wrt)
                    for (k, name) in ["dx", "dw", "dsample", "db"].prefix(wrt.count).enumerated() {
                        assertClose(got[k].storage, want[k].storage, atol: 1e-4, rtol: 1e-4, "\(name) " + label)
                    }
                    guard c.shape[0] >= 3 else { continue }
                    withTwoSampleChunks(input: c.shape, weight: c.weight, stride: c.stride, padding: c.padding) {
                        let chunked = x.conv2d(weight: w, bias: b, sampleBias: s, stride: c.stride, padding: c.padding)
                        assertClose(chunked.storage, fused.storage, atol: 1e-5, rtol: 1e-5, label + " chunked")
                    }
                }
            }
        }
        gradCheck(shapes: [[2, 3, 5, 4], [2, 3, 3, 3], [2], [2, 2]]) {
            $0[0].conv2d(weight: $0[1], bias: $0[2], sampleBias: $0[3], stride: 1, padding: 1)
        }
        gradCheck(shapes: [[3, 2, 4, 4], [2, 2, 1, 1], [3, 2]]) { $0[0].conv2d(weight: $0[1], bias: nil, sampleBias: $0[2]) }
    }

    /// Only the tracked inputs get gradients, and each equals the one computed with everything tracked.
    func testPartialGradients() {
        var rng = SplitMix64(seed: 7)
        let x = Tensor.normal(shape: [2, 3, 5, 5], rng: &rng), w = Tensor.normal(shape: [4, 3, 3, 3], rng: &rng)
        let b = Tensor.normal(shape: [4], rng: &rng)
        let (tx, tw, tb) = (x.trackingGradients(), w.trackingGradients(), b.trackingGradients())
        let all = Tape.gradients(of: tx.conv2d(weight: tw, bias: tb, padding: 1).squared().sum(), wrt: [tx, tw, tb])
        let onlyW = Tape.gradients(of: x.conv2d(weight: tw, bias: b, padding: 1).squared().sum(), wrt: [tw])
        assertClose(onlyW[0].storage, all[1].storage, "dw with x untracked")
        let onlyX = Tape.gradients(of: tx.conv2d(weight: w, bias: nil, padding: 1).squared().sum(), wrt: [tx])
        let allNoBias = Tape.gradients(of: tx.conv2d(weight: tw, bias: nil, padding: 1).squared().sum(), wrt: [tx])
        assertClose(onlyX[0].storage, allNoBias[0].storage, "dx with weight untracked")
        let onlyB = Tape.gradients(of: x.conv2d(weight: w, bias: tb, padding: 1).squared().sum(), wrt: [tb])
        assertClose(onlyB[0].storage, all[2].storage, "db alone")
    }
}
