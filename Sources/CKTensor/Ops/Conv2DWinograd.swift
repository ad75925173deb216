// Winograd convolution for 3x3 stride-1 pad-1 layers (Lavin & Gray 2016, "Fast Algorithms for Convolutional
// Neural Networks", https://arxiv.org/abs/1509.09308): the forward pass, dX through the transposed conv (also
// 3x3 stride 1 pad 1), and dW. Each output tile costs one multiply per transform point and (Cin, Cout) pair;
// the products at one point over all tiles are one GEMM (Cout x Cin) x (Cin x tiles), so the arithmetic still
// runs in sgemm. This file holds the choice of kernel and the two drivers; the transforms of F(2x2, 3x3) and
// F(4x4, 3x3) are in their own files, their AVX2 versions in CKWinograd (C).
import CKWinograd
import CKGemm

/// One Winograd variant: how many transform points a tile has, and its transforms.
struct WinogradKernel {
    /// 16 for F(2x2, 3x3), 36 for F(4x4, 3x3).
    let points: Int
    let tilesPerPlane: (ConvGeometry) -> Int
    /// weight (Cout, Cin, 3, 3) -> U (points, Cout, Cin)
    let weights: (ConvGeometry, UnsafePointer<Float>) -> [Float]
    /// x (n, Cin, H, W) -> V (points, Cin, n tiles); the Bool: run on this thread only
    let input: (ConvGeometry, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Bool) -> Void
    /// M (points, Cout, n tiles) -> y (n, Cout, H, W) + bias (n Cout: one value per output plane, or nil);
    /// leaves M zero (see `ConvScratch.withZeroed`)
    let output: (ConvGeometry, UnsafeMutablePointer<Float>, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>, Bool) -> Void
    /// dL/dy (n, Cout, H, W) -> Q (points, Cout, n tiles)
    let gradient: (ConvGeometry, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Bool) -> Void
    /// summed Q V^T of one (co, ci) pair (points) -> its 3x3 dW
    let weightFromProducts: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// M (points, n tiles, Cout) -> y, as `output` but from products stored channels last (only read); nil where
    /// the kernel has no such transform
    var outputChannelsLast: ((ConvGeometry, UnsafePointer<Float>, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>, Bool) -> Void)? = nil
}

extension ConvGeometry {
    /// The shape these kernels handle.
    var isWinograd3x3: Bool { kh == 3 && kw == 3 && stride == 1 && padding == 1 && h >= 2 && w >= 2 }

    /// Whether convolutions of this shape take a Winograd kernel. On 7x7 planes F(2x2)'s 16 tiles cover 8x8
    /// outputs (30% of the work wasted) and the GEMMs get narrow, so small planes stay with im2col.
    var usesWinograd: Bool {
        switch ConvTuning.winograd {
        case .never: return false
        case .always, .largeTiles: return isWinograd3x3
        case .auto: return isWinograd3x3 && h * w >= ConvTuning.winogradMinimumPlane
        }
    }

    /// Whether a Winograd-shaped convolution uses 4x4 output tiles (fewer multiplies, larger rounding error).
    var usesWinogradF43: Bool {
        guard usesWinograd else { return false }
        switch ConvTuning.winograd {
        case .largeTiles: return true
        case .auto: return h * w >= ConvTuning.winogradF43MinimumPlane
        case .always, .never: return false
        }
    }

    /// The Winograd kernel for this shape, nil where im2col runs.
    var winogradKernel: WinogradKernel? {
        guard usesWinograd else { return nil }
        let native = ConvTuning.nativeTransforms
        if usesWinogradF43 { return native ? (ConvTuning.avx512Transforms ? .f43NativeAVX512 : .f43Native) : .f43 }
        return native ? .f22Native : .f22
    }
}

/// A transform in C over planes first ..< end: (source, destination, H, W, channels, tiles of the chunk, first, end).
typealias PlaneTransform = @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int, Int, Int, Int, Int) -> Void
/// An output transform in C: (products, y, H, W, channels, tiles of the chunk, bias per plane or nil, first, end).
typealias PlaneOutputTransform = @convention(c)
    (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int, Int, Int, UnsafePointer<Float>?, Int, Int) -> Void
/// The same from products stored channels last, which it only reads.
typealias ChannelsLastOutputTransform = @convention(c)
    (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int, Int, Int, UnsafePointer<Float>?, Int, Int) -> Void

extension WinogradKernel {
    /// F(4x4, 3x3) and F(2x2, 3x3) with CKWinograd's AVX2 input, output and gradient transforms (x86-64 builds).
    static let f43Native = f43.withTransforms(input: ck_f43_input, output: ck_f43_output, gradient: ck_f43_gradient,
                                              outputChannelsLast: ck_f43_output_channels_last)
    /// F(4x4, 3x3) with its input transform and its output transform from channels-last products in AVX-512 (the
    /// same bits as the AVX2 ones, in fewer instructions).
    static let f43NativeAVX512 = f43.withTransforms(input: ck_f43_input_avx512, output: ck_f43_output, gradient: ck_f43_gradient,
                                                    outputChannelsLast: ck_f43_output_channels_last_avx512)
    static let f22Native = f22.withTransforms(input: ck_f22_input, output: ck_f22_output, gradient: ck_f22_gradient,
                                              outputChannelsLast: ck_f22_output_channels_last)

    /// This kernel with its input, output and gradient transforms done by C functions over ranges of planes,
    /// split over the threads as the Swift transforms split theirs.
    func withTransforms(input: PlaneTransform, output: PlaneOutputTransform, gradient: PlaneTransform,
                        outputChannelsLast: ChannelsLastOutputTransform) -> WinogradKernel {
        let points = points, tilesPerPlane = tilesPerPlane
        func forEachPlaneRange(_ planes: Int, _ g: ConvGeometry, serial: Bool, _ body: (Range<Int>) -> Void) {
            split(planes, minimumPerChunk: max(1, Parallel.grain / max(1, points * tilesPerPlane(g))), serial: serial, body)
        }
        return WinogradKernel(
            points: points, tilesPerPlane: tilesPerPlane, weights: weights,
            input: { g, x, n, v, serial in
                let t = n * tilesPerPlane(g)
                forEachPlaneRange(n * g.cin, g, serial: serial) { input(x, v, g.h, g.w, g.cin, t, $0.lowerBound, $0.upperBound) }
            },
            output: { g, m, n, bias, y, serial in
                let t = n * tilesPerPlane(g)
                forEachPlaneRange(n * g.cout, g, serial: serial) { output(m, y, g.h, g.w, g.cout, t, bias, $0.lowerBound, $0.upperBound) }
            },
            gradient: { g, grad, n, q, serial in
                let t = n * tilesPerPlane(g)
                forEachPlaneRange(n * g.cout, g, serial: serial) { gradient(grad, q, g.h, g.w, g.cout, t, $0.lowerBound, $0.upperBound) }
            },
            weightFromProducts: weightFromProducts,
            outputChannelsLast: { g, m, n, bias, y, serial in
                let t = n * tilesPerPlane(g)
                forEachPlaneRange(n * g.cout, g, serial: serial) {
                    outputChannelsLast(m, y, g.h, g.w, g.cout, t, bias, $0.lowerBound, $0.upperBound)
                }
            })
    }
}

/// y[chunk] = conv3x3(x[chunk], weight, pad 1) + bias (one value per output plane of the chunk), with
/// U = kernel.weights(weight), on this chunk's thread(s). `panels` (from `winogradWeightPanels`), when given, sends
/// the products to `ck_sgemm` with Cout in the vector lanes.
func winogradForward(_ g: ConvGeometry, _ kernel: WinogradKernel, x: UnsafePointer<Float>, u: UnsafePointer<Float>,
                     panels: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, chunk c: ConvChunk) {
    // x (nc, Cin, H, W) -> y (nc, Cout, H, W). V (points, Cin, T) for T tiles; M[e] = U[e] (Cout, Cin) V[e];
    // then the output transform.
    let points = kernel.points, t = c.count * kernel.tilesPerPlane(g)
    if let panels, let outputChannelsLast = kernel.outputChannelsLast, c.serial || Parallel.threadCount == 1 {
        // M[e] (T, Cout) = V[e]^T U[e]^T: OpenBLAS runs (Cout, T) products with Cout in its lanes; ck_sgemm puts
        // the columns there, which are then Cout (16 or 32 at a time, none wasted) rather than T (49 tiles of a
        // 28x28 plane fill 4 vectors, 64 lanes).
        ConvScratch.with(points * g.cin * t + winogradSlack, points * g.cout * t) { v, m in
            kernel.input(g, x, c.count, v, c.serial)
            for e in 0..<points {
                forEachWinogradPanel(g.cout) { j0, width in
                    ck_sgemm(1, 0, t, width, g.cin, v + e * g.cin * t, t, panels + e * g.cout * g.cin + j0 * g.cin, width,
                             0, m + e * t * g.cout + j0, g.cout)
                }
            }
            outputChannelsLast(g, m, c.count, bias, y, c.serial)
        }
        return
    }
    // M[e] (Cout, T), accumulated with beta 1 into a buffer kept zero.
    ConvScratch.with(points * g.cin * t + winogradSlack) { v in
        ConvScratch.withZeroed(points * g.cout * t + winogradSlack) { m in
            kernel.input(g, x, c.count, v, c.serial)
            for e in 0..<points {
                gemm(transposeA: false, transposeB: false, m: g.cout, n: t, k: g.cin,
                     a: u + e * g.cout * g.cin, lda: g.cin, b: v + e * g.cin * t, ldb: t,
                     beta: 1, c: m + e * g.cout * t, ldc: t)
            }
            kernel.output(g, m, c.count, bias, y, c.serial)
        }
    }
}

/// Cout's panels for the channels-last products, (first column, width): 32 columns each, the last narrower. One
/// `ck_sgemm` panel, whose rows (B read in place) are then 128 bytes apart.
@inline(__always)
func forEachWinogradPanel(_ cout: Int, _ body: (Int, Int) -> Void) {
    for j0 in stride(from: 0, to: cout, by: 32) { body(j0, min(32, cout - j0)) }
}

/// U (points, Cout, Cin) as the B operands of the channels-last products, or nil where they do not run: per point,
/// Cout in panels of 32 columns (the last narrower), each panel (Cin, width). Only for Cout a multiple of 16, where no
/// lane is wasted (the last layer's Cout of 1 keeps the (Cout, T) products).
func winogradWeightPanels(_ g: ConvGeometry, _ kernel: WinogradKernel, u: [Float]) -> [Float]? {
    guard kernel.outputChannelsLast != nil, OwnGEMM.runs, g.cout % 16 == 0 else { return nil }
    let points = kernel.points, cout = g.cout, cin = g.cin
    return [Float](unsafeUninitializedCapacity: u.count) { out, initialized in
        for e in 0..<points {
            forEachWinogradPanel(cout) { j0, width in
                let panel = out.baseAddress! + e * cout * cin + j0 * cin
                for ci in 0..<cin {
                    for j in 0..<width { panel[ci * width + j] = u[(e * cout + j0 + j) * cin + ci] }
                }
            }
        }
        initialized = u.count
    }
}

/// dW of y = conv3x3(x, weight, pad 1) given g = dL/dy, through the same transforms: with Q = A g A^T per
/// gradient tile (zero where the tile runs past the plane), dL/dU[e] = sum over tiles of Q[e] V[e]^T, and
/// dW = G^T (dL/dU) G.
func winogradWeightGradient(_ g: ConvGeometry, _ kernel: WinogradKernel, gradient grad: UnsafePointer<Float>,
                            x: UnsafePointer<Float>) -> [Float] {
    // grad (N, Cout, H, W), x (N, Cin, H, W) -> dW (Cout, Cin, 3, 3). Per chunk: V (points, Cin, T),
    // Q (points, Cout, T), dU[e] (Cout, Cin) += Q[e] V[e]^T, each worker into its own slot.
    let points = kernel.points, pairs = g.cout * g.cin
    let slots = UnsafeMutablePointer<Float>.allocate(capacity: max(1, Parallel.threadCount * points * pairs))
    defer { slots.deallocate() }
    let workers = g.forEachChunk { c in
        let t = c.count * kernel.tilesPerPlane(g)
        ConvScratch.with(points * g.cin * t + winogradSlack, points * g.cout * t + winogradSlack) { v, q in
            kernel.input(g, x + c.start * g.cin * g.planeIn, c.count, v, c.serial)
            kernel.gradient(g, grad + c.start * g.cout * g.planeIn, c.count, q, c.serial)
            let du = slots + c.worker * points * pairs
            for e in 0..<points {
                gemm(transposeA: false, transposeB: true, m: g.cout, n: g.cin, k: t, a: q + e * g.cout * t, lda: t,
                     b: v + e * g.cin * t, ldb: t, beta: c.isFirst ? 0 : 1, c: du + e * pairs, ldc: g.cin)
            }
        }
    }
    let summed = UnsafeMutablePointer<Float>.allocate(capacity: points)
    defer { summed.deallocate() }
    return [Float](unsafeUninitializedCapacity: 9 * pairs) { dw, initialized in
        for pair in 0..<pairs {
            for e in 0..<points {
                var sum: Float = 0
                for w in 0..<workers { sum += slots[(w * points + e) * pairs + pair] }
                summed[e] = sum
            }
            kernel.weightFromProducts(summed, dw.baseAddress! + 9 * pair)
        }
        initialized = 9 * pairs
    }
}

/// Reads past the last tile of a product buffer are harmless: scratch buffers carry this many spare floats.
let winogradSlack = 16

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { load8(UnsafePointer(p)) }
@inline(__always) func load16(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}
@inline(__always) func load32(_ p: UnsafeMutablePointer<Float>) -> SIMD32<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD32<Float>.self)
}
@inline(__always) func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
/// Stores the first `count` lanes: the last group of a row of tiles must not run into the next row's tiles.
@inline(__always) func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count == 8 { store8(v, p); return }
    for lane in 0..<count { p[lane] = v[lane] }
}
