// Winograd F(4x4, 3x3): the transforms (interpolation points 0, ±1, ±2, ∞) and the kernel built from them. A 4x4 output tile
// costs 36 multiplies per (Cin, Cout) pair instead of 144 (F(2x2, 3x3): 64), so the GEMMs are 1.8x smaller than
// F(2x2)'s, and the transformed input is 2.25 values per input value. Where CKWinograd has them (x86-64), the
// input, output and gradient transforms run its AVX2 versions (`.f43Native`); the Swift ones here are the portable path.
//
// Error: B and A have entries up to 5 and 8 and G has 1/24, so rounding grows by about one decimal digit over
// F(2x2); the largest error seen in the tests on unit-normal data was 9e-5 (F(2x2): 8e-6).

extension WinogradKernel {
    static let f43 = WinogradKernel(
        points: 36, tilesPerPlane: { $0.f43Tiles }, weights: winogradF43Weights,
        input: { f43Input($0, x: $1, count: $2, v: $3, serial: $4) },
        output: { f43Output($0, m: $1, count: $2, bias: $3, y: $4, serial: $5) },
        gradient: { f43Gradient($0, gradient: $1, count: $2, q: $3, serial: $4) },
        weightFromProducts: f43WeightFromProducts)
}

extension ConvGeometry {
    var f43TilesX: Int { (w + 3) / 4 }
    var f43TilesY: Int { (h + 3) / 4 }
    var f43Tiles: Int { f43TilesX * f43TilesY }
}

/// U[e][co][ci] = (G w G^T)[e], G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
func winogradF43Weights(_ g: ConvGeometry, _ weight: UnsafePointer<Float>) -> [Float] {
    // weight (Cout, Cin, 3, 3) -> U (36, Cout, Cin)
    let pairs = g.cout * g.cin
    @inline(__always) func gTimes(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>)
        -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        (a / 4, -(a + b + c) / 6, -(a - b + c) / 6, a / 24 + b / 12 + c / 6, a / 24 - b / 12 + c / 6, c)
    }
    return [Float](unsafeUninitializedCapacity: 36 * pairs) { ub, initialized in
        for pair in 0..<pairs {
            let w = weight + pair * 9
            // G w: six rows of three (a spare fourth lane), then each row times G^T.
            let gw = gTimes(SIMD4(w[0], w[1], w[2], 0), SIMD4(w[3], w[4], w[5], 0), SIMD4(w[6], w[7], w[8], 0))
            func storeRow(_ r: Int, _ row: SIMD4<Float>) {
                let e = gTimes(SIMD4(repeating: row[0]), SIMD4(repeating: row[1]), SIMD4(repeating: row[2]))
                let base = ub.baseAddress! + 6 * r * pairs + pair
                base[0] = e.0[0]; base[pairs] = e.1[0]; base[2 * pairs] = e.2[0]
                base[3 * pairs] = e.3[0]; base[4 * pairs] = e.4[0]; base[5 * pairs] = e.5[0]
            }
            storeRow(0, gw.0); storeRow(1, gw.1); storeRow(2, gw.2); storeRow(3, gw.3); storeRow(4, gw.4); storeRow(5, gw.5)
        }
        initialized = 36 * pairs
    }
}

private typealias V8 = SIMD8<Float>

/// B^T applied to six values (rows or columns of a patch).
@inline(__always)
private func bt(_ d0: V8, _ d1: V8, _ d2: V8, _ d3: V8, _ d4: V8, _ d5: V8) -> (V8, V8, V8, V8, V8, V8) {
    let r0 = 4 * d0 - 5 * d2 + d4
    let r1 = d3 + d4 - 4 * (d1 + d2), r2 = d4 - d3 + 4 * (d1 - d2)
    let r3 = d4 - d2 + 2 * (d3 - d1), r4 = d4 - d2 - 2 * (d3 - d1)
    let r5 = 4 * d1 - 5 * d3 + d5
    return (r0, r1, r2, r3, r4, r5)
}

/// A^T applied to six values: four outputs.
@inline(__always)
private func at(_ m0: V8, _ m1: V8, _ m2: V8, _ m3: V8, _ m4: V8, _ m5: V8) -> (V8, V8, V8, V8) {
    let p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4
    return (m0 + p12 + p34, n12 + 2 * n34, p12 + 4 * p34, n12 + 8 * n34 + m5)
}

/// V[e][ci][t] = (B^T d B)[e] for each 6x6 input patch d (stride 4, zero-padded).
private func f43Input(_ g: ConvGeometry, x: UnsafePointer<Float>, count nc: Int, v: UnsafeMutablePointer<Float>,
                      serial: Bool) {
    // x (nc, Cin, H, W) -> V (36, Cin, nc tiles). Per plane: copy into a zero-bordered buffer; per row of tiles
    // combine its 6 padded rows (B^T d), then split each combined row's columns by their phase mod 4 (the
    // quarters of a SIMD32), which gives 8 tiles' (B^T d B) per SIMD8 operation.
    let tilesX = g.f43TilesX, tilesY = g.f43TilesY
    let tiles = g.f43Tiles, t = nc * tiles, stride36 = g.cin * t
    let groups = (tilesX + 7) / 8, pw = 32 * groups + 8, ph = 4 * tilesY + 2
    split(nc * g.cin, minimumPerChunk: max(1, Parallel.grain / max(1, 36 * tiles)), serial: serial) { planes in
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: pw * (ph + 6))
        defer { padded.deallocate() }
        padded.initialize(repeating: 0, count: pw * (ph + 6))     // borders stay zero: only the interior is rewritten
        let rows = padded + pw * ph                                // B^T d for one row of tiles: 6 rows of pw
        for q in planes {
            let j = q / g.cin, ci = q % g.cin
            let src = x + q * g.planeIn
            for r in 0..<g.h { (padded + (r + 1) * pw + 1).update(from: src + r * g.w, count: g.w) }
            for ty in 0..<tilesY {
                let d = padded + 4 * ty * pw
                var c = 0
                while c < pw {
                    let b = bt(load8(d + c), load8(d + pw + c), load8(d + 2 * pw + c), load8(d + 3 * pw + c),
                               load8(d + 4 * pw + c), load8(d + 5 * pw + c))
                    store8(b.0, rows + c); store8(b.1, rows + pw + c); store8(b.2, rows + 2 * pw + c)
                    store8(b.3, rows + 3 * pw + c); store8(b.4, rows + 4 * pw + c); store8(b.5, rows + 5 * pw + c)
                    c += 8
                }
                let out = v + ci * t + j * tiles + ty * tilesX
                for i in 0..<6 {
                    let row = rows + i * pw
                    for group in 0..<groups {
                        // Patch columns 0...5 of tile tx are padded columns 4tx ... 4tx + 5.
                        let here = load32(row + 32 * group), next = load32(row + 32 * group + 4)
                        let p = bt(here.evenHalf.evenHalf, here.oddHalf.evenHalf, here.evenHalf.oddHalf,
                                   here.oddHalf.oddHalf, next.evenHalf.evenHalf, next.oddHalf.evenHalf)
                        let tx = 8 * group, valid = min(8, tilesX - tx), base = out + 6 * i * stride36 + tx
                        store8(p.0, base, valid); store8(p.1, base + stride36, valid); store8(p.2, base + 2 * stride36, valid)
                        store8(p.3, base + 3 * stride36, valid); store8(p.4, base + 4 * stride36, valid)
                        store8(p.5, base + 5 * stride36, valid)
                    }
                }
            }
        }
    }
}

/// y tile = A^T m A + bias, A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1], cropped to H x W.
private func f43Output(_ g: ConvGeometry, m: UnsafeMutablePointer<Float>, count nc: Int, bias: UnsafePointer<Float>?,
                       y: UnsafeMutablePointer<Float>, serial: Bool) {
    // M (36, Cout, nc tiles) -> y (nc, Cout, H, W), 8 tiles of a row of tiles at a time: four output rows of
    // 32 columns, built as the phase quarters of a SIMD32.
    let tilesX = g.f43TilesX, tilesY = g.f43TilesY
    let tiles = g.f43Tiles, t = nc * tiles, stride36 = g.cout * t
    let groups = (tilesX + 7) / 8
    split(nc * g.cout, minimumPerChunk: max(1, Parallel.grain / max(1, 36 * tiles)), serial: serial) { planes in
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: 4 * 32 * groups)
        defer { rows.deallocate() }
        for q in planes {
            let j = q / g.cout, co = q % g.cout
            let b = V8(repeating: bias?[q] ?? 0)
            let dst = y + q * g.planeIn
            for ty in 0..<tilesY {
                let src = m + co * t + j * tiles + ty * tilesX
                for group in 0..<groups {
                    let s = src + 8 * group
                    func mm(_ r: Int, _ c: Int) -> V8 { load8(s + (6 * r + c) * stride36) }
                    // A^T down each of the 6 columns, then A^T along each of the 4 resulting rows.
                    let c0 = at(mm(0, 0), mm(1, 0), mm(2, 0), mm(3, 0), mm(4, 0), mm(5, 0))
                    let c1 = at(mm(0, 1), mm(1, 1), mm(2, 1), mm(3, 1), mm(4, 1), mm(5, 1))
                    let c2 = at(mm(0, 2), mm(1, 2), mm(2, 2), mm(3, 2), mm(4, 2), mm(5, 2))
                    let c3 = at(mm(0, 3), mm(1, 3), mm(2, 3), mm(3, 3), mm(4, 3), mm(5, 3))
                    let c4 = at(mm(0, 4), mm(1, 4), mm(2, 4), mm(3, 4), mm(4, 4), mm(5, 4))
                    let c5 = at(mm(0, 5), mm(1, 5), mm(2, 5), mm(3, 5), mm(4, 5), mm(5, 5))
                    func store(_ k: Int, _ o: (V8, V8, V8, V8)) {
                        var r = SIMD32<Float>()
                        r.evenHalf.evenHalf = o.0 + b; r.oddHalf.evenHalf = o.1 + b
                        r.evenHalf.oddHalf = o.2 + b; r.oddHalf.oddHalf = o.3 + b
                        UnsafeMutableRawPointer(rows + k * 32 * groups + 32 * group).storeBytes(of: r, as: SIMD32<Float>.self)
                    }
                    store(0, at(c0.0, c1.0, c2.0, c3.0, c4.0, c5.0)); store(1, at(c0.1, c1.1, c2.1, c3.1, c4.1, c5.1))
                    store(2, at(c0.2, c1.2, c2.2, c3.2, c4.2, c5.2)); store(3, at(c0.3, c1.3, c2.3, c3.3, c4.3, c5.3))
                }
                for k in 0..<4 where 4 * ty + k < g.h {
                    (dst + (4 * ty + k) * g.w).update(from: rows + k * 32 * groups, count: g.w)
                }
            }
            for e in 0..<36 { (m + e * stride36 + co * t + j * tiles).update(repeating: 0, count: tiles) }
        }
    }
}

/// A times four values: A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1].
@inline(__always)
private func aTimes(_ g0: V8, _ g1: V8, _ g2: V8, _ g3: V8) -> (V8, V8, V8, V8, V8, V8) {
    let p02 = g0 + g2, p13 = g1 + g3, q02 = g0 + 4 * g2, q13 = 2 * g1 + 8 * g3
    return (g0, p02 + p13, p02 - p13, q02 + q13, q02 - q13, g3)
}

/// Q[e][co][t] = (A g A^T)[e] for each 4x4 gradient tile g (zero past the plane).
private func f43Gradient(_ g: ConvGeometry, gradient grad: UnsafePointer<Float>, count nc: Int,
                         q: UnsafeMutablePointer<Float>, serial: Bool) {
    // grad (nc, Cout, H, W) -> Q (36, Cout, nc tiles), 8 tiles at a time: a tile row's four gradient rows are
    // copied into zero-padded buffers whose columns split by phase mod 4 into the quarters of a SIMD32.
    let tilesX = g.f43TilesX, tilesY = g.f43TilesY
    let tiles = g.f43Tiles, t = nc * tiles, stride36 = g.cout * t
    let groups = (tilesX + 7) / 8, width = 32 * groups
    split(nc * g.cout, minimumPerChunk: max(1, Parallel.grain / max(1, 36 * tiles)), serial: serial) { planes in
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: 4 * width)
        defer { rows.deallocate() }
        rows.initialize(repeating: 0, count: 4 * width)
        for plane in planes {
            let j = plane / g.cout, co = plane % g.cout
            let src = grad + plane * g.planeIn
            for ty in 0..<tilesY {
                for r in 0..<4 {
                    let y = 4 * ty + r
                    if y < g.h { (rows + r * width).update(from: src + y * g.w, count: g.w) } else { (rows + r * width).update(repeating: 0, count: g.w) }
                }
                let out = q + co * t + j * tiles + ty * tilesX
                for group in 0..<groups {
                    // g A^T along each of the 4 rows (columns 4tx + k are phase k), then A down the 6 columns.
                    func row(_ r: Int) -> (V8, V8, V8, V8, V8, V8) {
                        let v = load32(rows + r * width + 32 * group)
                        let (e, o) = (v.evenHalf, v.oddHalf)
                        return aTimes(e.evenHalf, o.evenHalf, e.oddHalf, o.oddHalf)
                    }
                    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3))
                    let tx = 8 * group, valid = min(8, tilesX - tx)
                    func column(_ c: Int, _ v: (V8, V8, V8, V8, V8, V8)) {
                        let base = out + c * stride36 + tx
                        store8(v.0, base, valid); store8(v.1, base + 6 * stride36, valid); store8(v.2, base + 12 * stride36, valid)
                        store8(v.3, base + 18 * stride36, valid); store8(v.4, base + 24 * stride36, valid)
                        store8(v.5, base + 30 * stride36, valid)
                    }
                    column(0, aTimes(r0.0, r1.0, r2.0, r3.0)); column(1, aTimes(r0.1, r1.1, r2.1, r3.1))
                    column(2, aTimes(r0.2, r1.2, r2.2, r3.2)); column(3, aTimes(r0.3, r1.3, r2.3, r3.3))
                    column(4, aTimes(r0.4, r1.4, r2.4, r3.4)); column(5, aTimes(r0.5, r1.5, r2.5, r3.5))
                }
            }
        }
    }
}

/// dW[co, ci] = G^T X G for the summed products X (6x6, row-major),
/// G^T = [1/4 -1/6 -1/6 1/24 1/24 0; 0 -1/6 1/6 1/12 -1/12 0; 0 -1/6 -1/6 1/6 1/6 1].
private func f43WeightFromProducts(_ x: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>) {
    @inline(__always) func gt(_ v: (Float, Float, Float, Float, Float, Float)) -> (Float, Float, Float) {
        (v.0 / 4 - (v.1 + v.2) / 6 + (v.3 + v.4) / 24, (v.2 - v.1) / 6 + (v.3 - v.4) / 12, (v.3 + v.4 - v.1 - v.2) / 6 + v.5)
    }
    func row(_ i: Int) -> (Float, Float, Float) { gt((x[6 * i], x[6 * i + 1], x[6 * i + 2], x[6 * i + 3], x[6 * i + 4], x[6 * i + 5])) }
    let (r0, r1, r2, r3, r4, r5) = (row(0), row(1), row(2), row(3), row(4), row(5))   // X G, six rows of three
    let c0 = gt((r0.0, r1.0, r2.0, r3.0, r4.0, r5.0)), c1 = gt((r0.1, r1.1, r2.1, r3.1, r4.1, r5.1))
    let c2 = gt((r0.2, r1.2, r2.2, r3.2, r4.2, r5.2))
    (dw[0], dw[3], dw[6]) = c0; (dw[1], dw[4], dw[7]) = c1; (dw[2], dw[5], dw[8]) = c2
}
