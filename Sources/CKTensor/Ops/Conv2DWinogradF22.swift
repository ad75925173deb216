// Winograd F(2x2, 3x3): the transforms (B, G, A with entries 0, ±1 and 1/2) and the kernel built from them.
// The transformed input is 4 values per input value, where im2col writes 9; a 2x2 output tile costs 16
// multiplies per (Cin, Cout) pair instead of 36.
//
// Error: the transforms only add and halve, so the result differs from im2col by float rounding of sums of at
// most 4 more terms per product (largest error seen in the tests on unit-normal data: 8e-6).
// Where CKWinograd has them (x86-64), the input, output and gradient transforms run its AVX2 versions
// (`.f22Native`); the Swift ones here are the portable path.

extension WinogradKernel {
    static let f22 = WinogradKernel(
        points: 16, tilesPerPlane: { $0.winogradTiles }, weights: winogradWeights,
        input: { winogradInput($0, x: $1, count: $2, v: $3, serial: $4) },
        output: { winogradOutput($0, m: $1, count: $2, bias: $3, y: $4, serial: $5) },
        gradient: { winogradGradient($0, gradient: $1, count: $2, q: $3, serial: $4) },
        weightFromProducts: f22WeightFromProducts)
}

extension ConvGeometry {
    var winogradTilesX: Int { (w + 1) / 2 }
    var winogradTilesY: Int { (h + 1) / 2 }
    var winogradTiles: Int { winogradTilesX * winogradTilesY }
}

/// U[e][co][ci] = (G w G^T)[e] for G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
func winogradWeights(_ g: ConvGeometry, _ weight: UnsafePointer<Float>) -> [Float] {
    // weight (Cout, Cin, 3, 3) -> U (16, Cout, Cin)
    let pairs = g.cout * g.cin
    return [Float](unsafeUninitializedCapacity: 16 * pairs) { ub, initialized in
        for pair in 0..<pairs {
            let w = weight + pair * 9
            let w0 = SIMD4(w[0], w[1], w[2], 0), w1 = SIMD4(w[3], w[4], w[5], 0), w2 = SIMD4(w[6], w[7], w[8], 0)
            let gw = (w0, 0.5 * (w0 + w1 + w2), 0.5 * (w0 - w1 + w2), w2)       // G w: 4 rows of 3 (+ a spare lane)
            func storeRow(_ r: Int, _ a: SIMD4<Float>) {
                ub[(4 * r) * pairs + pair] = a[0]
                ub[(4 * r + 1) * pairs + pair] = 0.5 * (a[0] + a[1] + a[2])
                ub[(4 * r + 2) * pairs + pair] = 0.5 * (a[0] - a[1] + a[2])
                ub[(4 * r + 3) * pairs + pair] = a[2]
            }
            storeRow(0, gw.0); storeRow(1, gw.1); storeRow(2, gw.2); storeRow(3, gw.3)
        }
        initialized = 16 * pairs
    }
}

/// V[e][ci][t] = (B^T d B)[e] for each 4x4 input patch d (stride 2, zero-padded), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
private func winogradInput(_ g: ConvGeometry, x: UnsafePointer<Float>, count nc: Int, v: UnsafeMutablePointer<Float>,
                           serial: Bool) {
    // x (nc, Cin, H, W) -> V (16, Cin, nc tiles). Per plane: copy into a zero-bordered buffer, then per row of
    // tiles combine its 4 padded rows (B^T d) and split the columns into even and odd (SIMD16 halves), which
    // gives 8 tiles' (B^T d B) per SIMD8 operation.
    let tilesX = g.winogradTilesX, tilesY = g.winogradTilesY
    let tiles = g.winogradTiles, t = nc * tiles, stride16 = g.cin * t
    let groups = (tilesX + 7) / 8, pw = 16 * groups + 16, ph = 2 * tilesY + 2
    split(nc * g.cin, minimumPerChunk: max(1, Parallel.grain / max(1, 16 * tiles)), serial: serial) { planes in
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: pw * (ph + 4))
        defer { padded.deallocate() }
        padded.initialize(repeating: 0, count: pw * (ph + 4))     // borders stay zero: only the interior is rewritten
        let rows = padded + pw * ph                                // B^T d for one row of tiles: 4 rows of pw
        for q in planes {
            let j = q / g.cin, ci = q % g.cin
            let src = x + q * g.planeIn
            for r in 0..<g.h { (padded + (r + 1) * pw + 1).update(from: src + r * g.w, count: g.w) }
            for ty in 0..<tilesY {
                let d0 = padded + 2 * ty * pw, d1 = d0 + pw, d2 = d1 + pw, d3 = d2 + pw
                let t0 = rows, t1 = t0 + pw, t2 = t1 + pw, t3 = t2 + pw
                var c = 0
                while c < pw {
                    let a0 = load8(d0 + c), a1 = load8(d1 + c), a2 = load8(d2 + c), a3 = load8(d3 + c)
                    store8(a0 - a2, t0 + c); store8(a1 + a2, t1 + c); store8(a2 - a1, t2 + c); store8(a1 - a3, t3 + c)
                    c += 8
                }
                let out = v + ci * t + j * tiles + ty * tilesX
                for i in 0..<4 {
                    let row = rows + i * pw
                    let v0 = out + 4 * i * stride16, v1 = v0 + stride16, v2 = v1 + stride16, v3 = v2 + stride16
                    for group in 0..<groups {
                        // Patch columns 0...3 of tile tx are padded columns 2tx ... 2tx + 3.
                        let here = load16(row + 16 * group), next = load16(row + 16 * group + 2)
                        let e0 = here.evenHalf, o0 = here.oddHalf, e1 = next.evenHalf, o1 = next.oddHalf
                        let tx = 8 * group, valid = min(8, tilesX - tx)
                        store8(e0 - e1, v0 + tx, valid); store8(o0 + e1, v1 + tx, valid)
                        store8(e1 - o0, v2 + tx, valid); store8(o0 - o1, v3 + tx, valid)
                    }
                }
            }
        }
    }
}

/// y tile = A^T m A + bias for A^T = [1 1 1 0; 0 1 -1 -1], cropped to H x W.
private func winogradOutput(_ g: ConvGeometry, m: UnsafeMutablePointer<Float>, count nc: Int, bias: UnsafePointer<Float>?,
                            y: UnsafeMutablePointer<Float>, serial: Bool) {
    // M (16, Cout, nc tiles) -> y (nc, Cout, H, W), 8 tiles of a row of tiles at a time: two output rows of
    // 16 columns, the even and odd columns as the halves of a SIMD16.
    let tilesX = g.winogradTilesX, tilesY = g.winogradTilesY
    let tiles = g.winogradTiles, t = nc * tiles, stride16 = g.cout * t
    let groups = (tilesX + 7) / 8
    split(nc * g.cout, minimumPerChunk: max(1, Parallel.grain / max(1, 16 * tiles)), serial: serial) { planes in
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 16 * groups)
        defer { rows.deallocate() }
        let (o0, o1) = (rows, rows + 16 * groups)
        for q in planes {
            let j = q / g.cout, co = q % g.cout
            let b = SIMD8<Float>(repeating: bias?[q] ?? 0)
            let dst = y + q * g.planeIn
            for ty in 0..<tilesY {
                let src = m + co * t + j * tiles + ty * tilesX
                for group in 0..<groups {
                    let s = src + 8 * group
                    func at(_ e: Int) -> SIMD8<Float> { load8(s + e * stride16) }
                    // A^T m: rows s0 = m0 + m1 + m2, s1 = m1 - m2 - m3 (m_i the rows of the 4x4 tile)
                    let s00 = at(0) + at(4) + at(8), s01 = at(1) + at(5) + at(9)
                    let s02 = at(2) + at(6) + at(10), s03 = at(3) + at(7) + at(11)
                    let s10 = at(4) - at(8) - at(12), s11 = at(5) - at(9) - at(13)
                    let s12 = at(6) - at(10) - at(14), s13 = at(7) - at(11) - at(15)
                    var r0 = SIMD16<Float>(), r1 = SIMD16<Float>()
                    r0.evenHalf = s00 + s01 + s02 + b; r0.oddHalf = s01 - s02 - s03 + b
                    r1.evenHalf = s10 + s11 + s12 + b; r1.oddHalf = s11 - s12 - s13 + b
                    UnsafeMutableRawPointer(o0 + 16 * group).storeBytes(of: r0, as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(o1 + 16 * group).storeBytes(of: r1, as: SIMD16<Float>.self)
                }
                let oy = 2 * ty
                (dst + oy * g.w).update(from: o0, count: g.w)
                if oy + 1 < g.h { (dst + (oy + 1) * g.w).update(from: o1, count: g.w) }
            }
            for e in 0..<16 { (m + e * stride16 + co * t + j * tiles).update(repeating: 0, count: tiles) }
        }
    }
}

/// Q[e][co][t] = (A g A^T)[e] for each 2x2 gradient tile g (zero past the plane), A = [1 0; 1 1; 1 -1; 0 -1].
private func winogradGradient(_ g: ConvGeometry, gradient grad: UnsafePointer<Float>, count nc: Int,
                              q: UnsafeMutablePointer<Float>, serial: Bool) {
    // grad (nc, Cout, H, W) -> Q (16, Cout, nc tiles), 8 tiles at a time: a tile row's two gradient rows are
    // copied into zero-padded buffers whose even and odd columns are the halves of a SIMD16.
    let tilesX = g.winogradTilesX, tilesY = g.winogradTilesY
    let tiles = g.winogradTiles, t = nc * tiles, stride16 = g.cout * t
    let groups = (tilesX + 7) / 8
    split(nc * g.cout, minimumPerChunk: max(1, Parallel.grain / max(1, 16 * tiles)), serial: serial) { planes in
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 16 * groups)
        defer { rows.deallocate() }
        rows.initialize(repeating: 0, count: 2 * 16 * groups)
        let (r0, r1) = (rows, rows + 16 * groups)
        for plane in planes {
            let j = plane / g.cout, co = plane % g.cout
            let src = grad + plane * g.planeIn
            for ty in 0..<tilesY {
                r0.update(from: src + 2 * ty * g.w, count: g.w)
                if 2 * ty + 1 < g.h { r1.update(from: src + (2 * ty + 1) * g.w, count: g.w) } else { r1.update(repeating: 0, count: g.w) }
                let out = q + co * t + j * tiles + ty * tilesX
                for group in 0..<groups {
                    let top = load16(r0 + 16 * group), bottom = load16(r1 + 16 * group)
                    let (g00, g01, g10, g11) = (top.evenHalf, top.oddHalf, bottom.evenHalf, bottom.oddHalf)
                    let tx = 8 * group, valid = min(8, tilesX - tx)
                    // A g: rows (g0), (g0 + g1), (g0 - g1), (-g1); then each row (p, q) -> (p, p + q, p - q, -q).
                    func row(_ i: Int, _ p: SIMD8<Float>, _ r: SIMD8<Float>) {
                        let base = out + 4 * i * stride16 + tx
                        store8(p, base, valid); store8(p + r, base + stride16, valid)
                        store8(p - r, base + 2 * stride16, valid); store8(-r, base + 3 * stride16, valid)
                    }
                    row(0, g00, g01); row(1, g00 + g10, g01 + g11); row(2, g00 - g10, g01 - g11); row(3, -g10, -g11)
                }
            }
        }
    }
}

/// dW[co, ci] = G^T X G for the summed products X (4x4, row-major), G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1].
private func f22WeightFromProducts(_ x: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>) {
    let load = { (r: Int) in SIMD4(x[4 * r], x[4 * r + 1], x[4 * r + 2], x[4 * r + 3]) }
    let (x0, x1, x2, x3) = (load(0), load(1), load(2), load(3))
    func storeRow(_ r: Int, _ p: SIMD4<Float>) {             // a row of G^T X, times G
        dw[3 * r] = p[0] + 0.5 * (p[1] + p[2])
        dw[3 * r + 1] = 0.5 * (p[1] - p[2])
        dw[3 * r + 2] = 0.5 * (p[1] + p[2]) + p[3]
    }
    storeRow(0, x0 + 0.5 * (x1 + x2)); storeRow(1, 0.5 * (x1 - x2)); storeRow(2, 0.5 * (x1 + x2) + x3)
}
