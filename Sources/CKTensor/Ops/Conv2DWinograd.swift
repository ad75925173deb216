// Winograd F(2x2, 3x3) kernel for 3x3 stride-1 pad-1 convolutions (forward, and dX through the transposed conv).
// Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks", https://arxiv.org/abs/1509.09308
// Each 2x2 output tile costs 16 multiplies per (Cin, Cout) pair instead of 36: the 16 products become
// 16 GEMMs (Cout x Cin) x (Cin x tiles), so the arithmetic still runs in sgemm.

extension ConvGeometry {
    /// The shape this kernel handles.
    var isWinograd3x3: Bool { kh == 3 && kw == 3 && stride == 1 && padding == 1 }
}

/// y = conv3x3(x, weight, pad 1) + bias through F(2x2, 3x3).
func winogradForward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: [Float]?,
                     y: UnsafeMutablePointer<Float>) {
    // x (N, Cin, H, W), weight (Cout, Cin, 3, 3) -> y (N, Cout, H, W). Per chunk of nc samples with T tiles:
    // V (16, Cin, T) = B^T d B; M[e] (Cout, T) = U[e] (Cout, Cin) V[e] (Cin, T); y = A^T M A + bias.
    let tilesY = (g.h + 1) / 2, tilesX = (g.w + 1) / 2, tiles = tilesY * tilesX
    let u = winogradWeights(g, weight)
    let perSample = 16 * max(g.cin, g.cout) * tiles
    let most = max(1, min(g.n, ConvTuning.winogradChunkFloats / perSample))
    let chunks = (g.n + most - 1) / most, chunk = (g.n + chunks - 1) / chunks
    u.withUnsafeBufferPointer { ub in
        ConvScratch.with(16 * g.cin * chunk * tiles, 16 * g.cout * chunk * tiles) { v, m in
            for n0 in stride(from: 0, to: g.n, by: chunk) {
                let nc = min(chunk, g.n - n0), t = nc * tiles
                winogradInput(g, x: x + n0 * g.cin * g.planeIn, count: nc, tilesX: tilesX, tilesY: tilesY, v: v)
                for e in 0..<16 {
                    gemm(transposeA: false, transposeB: false, m: g.cout, n: t, k: g.cin,
                         a: ub.baseAddress! + e * g.cout * g.cin, lda: g.cin, b: v + e * g.cin * t, ldb: t,
                         c: m + e * g.cout * t, ldc: t)
                }
                winogradOutput(g, m: m, count: nc, tilesX: tilesX, tilesY: tilesY, bias: bias, y: y + n0 * g.cout * g.planeIn)
            }
        }
    }
}

/// U[e][co][ci] = (G w G^T)[e] for G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
private func winogradWeights(_ g: ConvGeometry, _ weight: UnsafePointer<Float>) -> [Float] {
    // weight (Cout, Cin, 3, 3) -> U (16, Cout, Cin)
    let pairs = g.cout * g.cin
    var u = [Float](repeating: 0, count: 16 * pairs)
    u.withUnsafeMutableBufferPointer { ub in
        for pair in 0..<pairs {
            let w = weight + pair * 9
            let w0 = SIMD4(w[0], w[1], w[2], 0), w1 = SIMD4(w[3], w[4], w[5], 0), w2 = SIMD4(w[6], w[7], w[8], 0)
            let gw = [w0, 0.5 * (w0 + w1 + w2), 0.5 * (w0 - w1 + w2), w2]     // G w, rows of 3 (+ a spare lane)
            for r in 0..<4 {
                let a = gw[r]
                ub[(4 * r) * pairs + pair] = a[0]
                ub[(4 * r + 1) * pairs + pair] = 0.5 * (a[0] + a[1] + a[2])
                ub[(4 * r + 2) * pairs + pair] = 0.5 * (a[0] - a[1] + a[2])
                ub[(4 * r + 3) * pairs + pair] = a[2]
            }
        }
    }
    return u
}

/// V[e][ci][t] = (B^T d B)[e] for each 4x4 input patch d (stride 2, zero-padded), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
private func winogradInput(_ g: ConvGeometry, x: UnsafePointer<Float>, count nc: Int, tilesX: Int, tilesY: Int,
                           v: UnsafeMutablePointer<Float>) {
    // x (nc, Cin, H, W) -> V (16, Cin, nc tiles). Each plane is first copied into a zero-bordered buffer whose
    // rows hold the even padded columns, then the odd ones: every later loop then runs along contiguous memory
    // (the stride-2 tile loops were the kernel's hot spot, not sgemm).
    let tiles = tilesX * tilesY, t = nc * tiles, stride16 = g.cin * t
    let half = tilesX + 1, pw = 2 * half, ph = 2 * tilesY + 2
    Parallel.forEachChunk(nc * g.cin, minimumPerChunk: max(1, Parallel.grain / max(1, 16 * tiles))) { planes in
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: pw * ph + 4 * pw)
        defer { padded.deallocate() }
        padded.initialize(repeating: 0, count: pw * ph + 4 * pw)  // borders stay zero: only the interior is rewritten
        let rows = padded + pw * ph                                // B^T d for one row of tiles: 4 rows of pw
        for q in planes {
            let j = q / g.cin, ci = q % g.cin
            let src = x + q * g.planeIn
            for r in 0..<g.h {
                // Input column c sits at padded column c + 1: odd c in the even half, even c in the odd half.
                let even = padded + (r + 1) * pw, odd = even + half, s = src + r * g.w
                for k in 1..<(g.w / 2 + 1) { even[k] = s[2 * k - 1] }
                for k in 0..<((g.w + 1) / 2) { odd[k] = s[2 * k] }
            }
            for ty in 0..<tilesY {
                let d0 = padded + 2 * ty * pw, d1 = d0 + pw, d2 = d1 + pw, d3 = d2 + pw
                let t0 = rows, t1 = t0 + pw, t2 = t1 + pw, t3 = t2 + pw
                for c in 0..<pw {
                    t0[c] = d0[c] - d2[c]; t1[c] = d1[c] + d2[c]; t2[c] = d2[c] - d1[c]; t3[c] = d1[c] - d3[c]
                }
                let out = v + ci * t + j * tiles + ty * tilesX
                for i in 0..<4 {
                    // Patch columns 0...3 of tile tx are E[tx], O[tx], E[tx+1], O[tx+1].
                    let e = rows + i * pw, o = e + half
                    let v0 = out + 4 * i * stride16, v1 = v0 + stride16, v2 = v1 + stride16, v3 = v2 + stride16
                    for tx in 0..<tilesX { v0[tx] = e[tx] - e[tx + 1] }
                    for tx in 0..<tilesX { v1[tx] = o[tx] + e[tx + 1] }
                    for tx in 0..<tilesX { v2[tx] = e[tx + 1] - o[tx] }
                    for tx in 0..<tilesX { v3[tx] = o[tx] - o[tx + 1] }
                }
            }
        }
    }
}

/// y tile = A^T m A + bias for A^T = [1 1 1 0; 0 1 -1 -1], cropped to H x W.
private func winogradOutput(_ g: ConvGeometry, m: UnsafePointer<Float>, count nc: Int, tilesX: Int, tilesY: Int,
                            bias: [Float]?, y: UnsafeMutablePointer<Float>) {
    // M (16, Cout, nc tiles) -> y (nc, Cout, H, W), a row of tiles at a time (two output rows of 2 tilesX columns).
    let tiles = tilesX * tilesY, t = nc * tiles, stride16 = g.cout * t
    Parallel.forEachChunk(nc * g.cout, minimumPerChunk: max(1, Parallel.grain / max(1, 16 * tiles))) { planes in
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: 4 * tilesX * 2)   // 2 output rows, padded to even width
        defer { rows.deallocate() }
        for q in planes {
            let j = q / g.cout, co = q % g.cout
            let b = bias?[co] ?? 0
            let dst = y + q * g.planeIn
            for ty in 0..<tilesY {
                let src = m + co * t + j * tiles + ty * tilesX
                let (o0, o1) = (rows, rows + 2 * tilesX)
                for tx in 0..<tilesX {
                    func at(_ e: Int) -> Float { src[e * stride16 + tx] }
                    // A^T m: rows s0 = m0 + m1 + m2, s1 = m1 - m2 - m3 (m_i the rows of the 4x4 tile)
                    let s00 = at(0) + at(4) + at(8), s01 = at(1) + at(5) + at(9)
                    let s02 = at(2) + at(6) + at(10), s03 = at(3) + at(7) + at(11)
                    let s10 = at(4) - at(8) - at(12), s11 = at(5) - at(9) - at(13)
                    let s12 = at(6) - at(10) - at(14), s13 = at(7) - at(11) - at(15)
                    o0[2 * tx] = s00 + s01 + s02 + b; o0[2 * tx + 1] = s01 - s02 - s03 + b
                    o1[2 * tx] = s10 + s11 + s12 + b; o1[2 * tx + 1] = s11 - s12 - s13 + b
                }
                let oy = 2 * ty
                (dst + oy * g.w).update(from: o0, count: g.w)
                if oy + 1 < g.h { (dst + (oy + 1) * g.w).update(from: o1, count: g.w) }
            }
        }
    }
}
