// Normalization: GroupNorm (alone or fused with SiLU) and LayerNorm, each with a hand-derived fused backward.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// With x̂ = (x - μ) r, r = 1 / sqrt(var + eps) over one normalization set of m values, and z = x̂ w + b:
//   dL/dx = r (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)),  dx̂ = dL/dz · w      (means over the set)
//   dL/dw = Σ dL/dz · x̂,  dL/db = Σ dL/dz                             (sums over all that share w, b)
// groupNormSiLU outputs silu(z); its backward first turns dL/dy into dL/dz = dL/dy · silu'(z).

// MARK: - GroupNorm

extension Tensor {
    /// Group normalization (Wu & He 2018, https://arxiv.org/abs/1803.08494) of an (N, C, ...) tensor:
    /// mean and biased variance per (sample, group of C/G channels) over those channels and all trailing
    /// dimensions, then `weight` and `bias` (each (C), optional) per channel. PyTorch semantics.
    public func groupNorm(groupCount: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        groupNormalized(groupCount: groupCount, weight: weight, bias: bias, eps: eps, silu: false)
    }

    /// `groupNorm(...).silu()` in one pass, forward and backward: the norm-then-activation in front of
    /// every 3x3 conv of unet-s. The pre-activation is recomputed in the backward, never stored.
    public func groupNormSiLU(groupCount: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        groupNormalized(groupCount: groupCount, weight: weight, bias: bias, eps: eps, silu: true)
    }

    private func groupNormalized(groupCount: Int, weight: Tensor?, bias: Tensor?, eps: Float, silu: Bool) -> Tensor {
        let op = silu ? "groupNormSiLU" : "groupNorm"
        precondition(rank >= 2, "\(op): input \(shape) must be (N, C, ...)")
        let c = shape[1]
        precondition(groupCount > 0 && c % groupCount == 0, "\(op): \(groupCount) groups must divide the \(c) channels of \(shape)")
        for (name, t) in [("weight", weight), ("bias", bias)] {
            if let t { precondition(t.shape == [c], "\(op): \(name) \(t.shape) must be [\(c)] for input \(shape)") }
        }
        let geo = GroupGeometry(samples: shape[0], channels: c, groups: groupCount, spatial: shape.dropFirst(2).reduce(1, *))
        // A missing affine is w = 1, b = 0: (C) values, too few to be worth separate kernels.
        let w = weight?.storage ?? [Float](repeating: 1, count: c), b = bias?.storage ?? [Float](repeating: 0, count: c)
        var stats = [Float](repeating: 0, count: 2 * geo.jobs)
        let y = Tensor(shape: shape) { out in
            storage.withUnsafeBufferPointer { x in w.withUnsafeBufferPointer { w in b.withUnsafeBufferPointer { b in
                stats.withUnsafeMutableBufferPointer { st in
                    groupNormForward(x.baseAddress!, out.baseAddress!, w.baseAddress!, b.baseAddress!, st.baseAddress!,
                                     geo, eps: eps, silu: silu)
                }
            } } }
        }
        let inputs = [self] + [weight, bias].compactMap { $0 }
        let x = detached(), wantX = requiresGradient
        let wantW = weight?.requiresGradient ?? false, wantB = bias?.requiresGradient ?? false
        let hasW = weight != nil, hasB = bias != nil
        let full = geo, fullStats = stats
        return y.recorded(inputs: inputs, takesLeadingRows: true) { g in
            // A gradient of the leading samples only (LeadingRows.swift) runs on those samples, with their statistics.
            let geo = GroupGeometry(samples: g.shape[0], channels: c, groups: groupCount, spatial: full.spatial)
            let stats = leadingStatistics(fullStats, of: full.jobs, first: geo.jobs)
            // silu needs a dL/dz buffer even when x wants no gradient; dx reuses it.
            // Every value of dx is written by the kernel.
            var dx = [Float](unsafeUninitializedCapacity: (wantX || silu) ? g.count : 0) { _, n in n = (wantX || silu) ? g.count : 0 }
            var sums = [Double](repeating: 0, count: (wantW || wantB) ? 2 * geo.samples * c : 0)
            g.storage.withUnsafeBufferPointer { g in x.storage.withUnsafeBufferPointer { x in
                w.withUnsafeBufferPointer { w in b.withUnsafeBufferPointer { b in stats.withUnsafeBufferPointer { st in
                    dx.withUnsafeMutableBufferPointer { dx in sums.withUnsafeMutableBufferPointer { sums in
                        groupNormBackward(g.baseAddress!, x.baseAddress!, w.baseAddress!, b.baseAddress!, st.baseAddress!,
                                          // An empty array's baseAddress need not be nil: pass nil explicitly.
                                          (wantX || silu) ? dx.baseAddress : nil, (wantW || wantB) ? sums.baseAddress : nil,
                                          geo, silu: silu, wantX: wantX)
                    } }
                } } }
            } }
            // dL/dw[c] = Σ_n Σ dz x̂ and dL/db[c] = Σ_n Σ dz, from the per-(sample, channel) sums.
            func perChannel(_ half: Int) -> Tensor {
                Tensor(shape: [c]) { out in
                    for ch in 0..<c {
                        var acc = 0.0
                        for n in 0..<geo.samples { acc += sums[half * geo.samples * c + n * c + ch] }
                        out[ch] = Float(acc)
                    }
                }
            }
            var grads: [Tensor?] = [wantX ? Tensor(shape: g.shape, storage: dx) : nil]
            if hasW { grads.append(wantW ? perChannel(1) : nil) }
            if hasB { grads.append(wantB ? perChannel(0) : nil) }
            return grads
        }
    }
}

/// (N, C, S) seen as N·G contiguous groups of C/G channels by S values.
struct GroupGeometry {
    let samples, channels, groups, spatial: Int
    var perGroup: Int { channels / groups }
    var jobs: Int { samples * groups }
    var m: Int { perGroup * spatial }
}

// x, y: (N, C, S); w, b: (C); stats: (2, N, G) = mean, then rstd
func groupNormForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                      _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ stats: UnsafeMutablePointer<Float>,
                      _ geo: GroupGeometry, eps: Float, silu: Bool) {
    let s = geo.spatial
    forEachJob(geo.jobs, work: geo.jobs * geo.m) { job in
        let base = job * geo.m, first = (job % geo.groups) * geo.perGroup
        let (mu, r) = spanStatistics(x + base, geo.m, eps: eps)
        stats[job] = mu
        stats[geo.jobs + job] = r
        for k in 0..<geo.perGroup {
            let a = r * w[first + k], bc = b[first + k], xp = x + base + k * s, yp = y + base + k * s
            if silu {
                affineSiLULoop(xp, yp, s, shift: mu, scale: a, offset: bc)
            } else {
                for i in 0..<s { yp[i] = (xp[i] - mu) * a + bc }
            }
        }
    }
}

// g, x: (N, C, S); w, b: (C); stats: (2, N, G); dx: (N, C, S) or nil; sums: (2, N, C) = Σ dz, then Σ dz·x̂, or nil.
// With silu, dx first receives dL/dz and is then overwritten with dL/dx (when wanted).
func groupNormBackward(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                       _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ stats: UnsafePointer<Float>,
                       _ dx: UnsafeMutablePointer<Float>?, _ sums: UnsafeMutablePointer<Double>?,
                       _ geo: GroupGeometry, silu: Bool, wantX: Bool) {
    let s = geo.spatial, c = geo.channels, nc = geo.samples * c
    forEachJob(geo.jobs, work: geo.jobs * geo.m) { job in
        let base = job * geo.m, first = (job % geo.groups) * geo.perGroup, sample = job / geo.groups
        let mu = stats[job], r = stats[geo.jobs + job]
        var sumD = 0.0, sumDX = 0.0        // Σ dx̂ and Σ dx̂ x̂ over the group
        for k in 0..<geo.perGroup {
            let ch = first + k, off = base + k * s, gp = g + off, xp = x + off
            let (sz, szd): (Double, Double)   // Σ dz and Σ dz (x - μ) over the channel
            if silu {
                // dz = g silu'(z), then its sums while dz is in cache
                let dz = dx! + off
                affineSiLUGradientLoop(gp, xp, dz, s, shift: mu, scale: r * w[ch], offset: b[ch])
                (sz, szd) = blockedSums(s) { i, n in let v = Lanes(dz + i, n); return (v, v * (Lanes(xp + i, n) - mu)) }
            } else {
                (sz, szd) = blockedSums(s) { i, n in let v = Lanes(gp + i, n); return (v, v * (Lanes(xp + i, n) - mu)) }
            }
            if let sums {
                sums[sample * c + ch] = sz
                sums[nc + sample * c + ch] = szd * Double(r)
            }
            sumD += Double(w[ch]) * sz
            sumDX += Double(w[ch]) * szd * Double(r)
        }
        guard wantX, let dx else { return }
        let meanD = Float(sumD / Double(geo.m)), meanDX = Float(sumDX / Double(geo.m))
        for k in 0..<geo.perGroup {
            // dx = r (w dz - mean(dx̂)) - (x - μ) r² mean(dx̂ x̂)
            let off = base + k * s, c1 = r * w[first + k], c2 = r * meanD, c3 = r * r * meanDX
            let src = silu ? UnsafePointer(dx + off) : g + off, xp = x + off, dst = dx + off
            for i in 0..<s { dst[i] = c1 * src[i] - c2 - (xp[i] - mu) * c3 }
        }
    }
}

// MARK: - LayerNorm

extension Tensor {
    /// Layer normalization (Ba et al. 2016, https://arxiv.org/abs/1607.06450): mean and biased variance per
    /// sample over the last `normalizedRank` dimensions, then `weight` and `bias` (optional, each of any
    /// shape that broadcasts to those dimensions). Non-scaling LayerNorm (algorithms.md 2.5) is
    /// `layerNorm(normalizedRank: 3, weight: nil, bias: b)` with b of shape (C, 1, 1).
    public func layerNorm(normalizedRank: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(normalizedRank >= 1 && normalizedRank <= rank, "layerNorm: normalizedRank \(normalizedRank) for input \(shape)")
        let inner = Array(shape.suffix(normalizedRank)), m = inner.reduce(1, *), rows = m == 0 ? 0 : count / m
        // Affine parameters expanded to the full normalized shape: at most one sample's worth of values.
        func expanded(_ t: Tensor?, _ name: String) -> [Float]? {
            guard let t else { return nil }
            precondition(broadcastShape(t.shape, inner) == inner, "layerNorm: \(name) \(t.shape) does not broadcast to \(inner), the last \(normalizedRank) dimensions of \(shape)")
            return t.shape == inner ? t.storage : broadcastBinary(t, Tensor(zeros: inner), "layerNorm", First()).storage
        }
        let w = expanded(weight, "weight"), b = expanded(bias, "bias")
        var stats = [Float](repeating: 0, count: 2 * rows)
        // x, y: (rows, m); w, b: (m) or nil; stats: (2, rows) = mean, then rstd
        let y = Tensor(shape: shape) { out in
            storage.withUnsafeBufferPointer { x in stats.withUnsafeMutableBufferPointer { st in
                let x = x.baseAddress!, y = out.baseAddress!, st = st.baseAddress!
                forEachJob(rows, work: count) { row in
                    let xp = x + row * m, yp = y + row * m
                    let (mu, r) = spanStatistics(xp, m, eps: eps)
                    st[row] = mu
                    st[rows + row] = r
                    switch (w, b) {
                    case let (w?, b?): for i in 0..<m { yp[i] = (xp[i] - mu) * r * w[i] + b[i] }
                    case let (w?, nil): for i in 0..<m { yp[i] = (xp[i] - mu) * r * w[i] }
                    case let (nil, b?): for i in 0..<m { yp[i] = (xp[i] - mu) * r + b[i] }
                    case (nil, nil): for i in 0..<m { yp[i] = (xp[i] - mu) * r }
                    }
                }
            } }
        }
        let inputs = [self] + [weight, bias].compactMap { $0 }
        let x = detached(), wantX = requiresGradient, shapeW = weight?.shape, shapeB = bias?.shape
        let wantW = weight?.requiresGradient ?? false, wantB = bias?.requiresGradient ?? false
        let allRows = rows, allStats = stats
        // A gradient of the leading samples only (LeadingRows.swift) runs on their rows, with their statistics;
        // the first axis must then be outside the normalized ones.
        return y.recorded(inputs: inputs, takesLeadingRows: normalizedRank < rank) { g in
            let rows = m == 0 ? 0 : g.count / m
            let stats = leadingStatistics(allStats, of: allRows, first: rows)
            var dx = [Float](repeating: 0, count: wantX ? g.count : 0)
            var dw = [Float](repeating: 0, count: wantW ? m : 0), db = [Float](repeating: 0, count: wantB ? m : 0)
            g.storage.withUnsafeBufferPointer { g in x.storage.withUnsafeBufferPointer { x in stats.withUnsafeBufferPointer { st in
                let g = g.baseAddress!, x = x.baseAddress!, st = st.baseAddress!
                if wantX {
                    dx.withUnsafeMutableBufferPointer { dx in
                        layerNormBackwardX(g, x, w, st, dx.baseAddress!, rows: rows, m: m)
                    }
                }
                // g, x: (rows, m); dw, db: (m), summed over rows; chunks of m run in parallel
                if wantW || wantB {
                    dw.withUnsafeMutableBufferPointer { dw in db.withUnsafeMutableBufferPointer { db in
                        let dw = wantW ? dw.baseAddress : nil, db = wantB ? db.baseAddress : nil   // empty != nil
                        Parallel.forEachChunk(m, minimumPerChunk: max(1, Parallel.grain / max(rows, 1))) { range in
                            for row in 0..<rows {
                                let gp = g + row * m, xp = x + row * m, mu = st[row], r = st[rows + row]
                                if let dw { for i in range { dw[i] += gp[i] * (xp[i] - mu) * r } }
                                if let db { for i in range { db[i] += gp[i] } }
                            }
                        }
                    } }
                }
            } } }
            var grads: [Tensor?] = [wantX ? Tensor(shape: g.shape, storage: dx) : nil]
            if let shapeW { grads.append(wantW ? Tensor(shape: inner, storage: dw).summed(toShape: shapeW) : nil) }
            if let shapeB { grads.append(wantB ? Tensor(shape: inner, storage: db).summed(toShape: shapeB) : nil) }
            return grads
        }
    }
}

// g, x, dx: (rows, m); w: (m) or nil (ones); stats: (2, rows)
func layerNormBackwardX(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ w: [Float]?,
                        _ stats: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rows: Int, m: Int) {
    let ones = [Float](repeating: 1, count: w == nil ? m : 0)
    (w ?? ones).withUnsafeBufferPointer { w in
        let w = w.baseAddress!
        forEachJob(rows, work: rows * m) { row in
            let gp = g + row * m, xp = x + row * m, dp = dx + row * m, mu = stats[row], r = stats[rows + row]
            // Σ dx̂ and Σ dx̂ (x - μ), with dx̂ = g w
            let (sd, sdd) = blockedSums(m) { i, n in
                let v = Lanes(gp + i, n) * Lanes(w + i, n)
                return (v, v * (Lanes(xp + i, n) - mu))
            }
            // dx = r (g w - mean(dx̂)) - (x - μ) r² mean(dx̂ x̂),  mean(dx̂ x̂) = r Σ dx̂ (x - μ) / m
            let c2 = r * Float(sd / Double(m)), c3 = r * r * r * Float(sdd / Double(m))
            for i in 0..<m { dp[i] = r * gp[i] * w[i] - c2 - (xp[i] - mu) * c3 }
        }
    }
}

/// Statistics laid out (2, total) (means, then rstds) cut to their first `first` of each, for a backward on the
/// leading samples only (LeadingRows.swift).
func leadingStatistics(_ stats: [Float], of total: Int, first: Int) -> [Float] {
    first == total ? stats : Array(stats[..<first]) + Array(stats[total..<(total + first)])
}

// MARK: - Kernel helpers: eight lanes at a time

typealias Lanes = SIMD8<Float>

/// Runs `body(job)` for each job, spread over the threads when the total `work` (values touched) is worth it.
@inline(__always)
func forEachJob(_ jobs: Int, work: Int, _ body: (Int) -> Void) {
    if work < Parallel.grain { for j in 0..<jobs { body(j) } } else { Parallel.forEach(jobs, body) }
}

extension SIMD8 where Scalar == Float {
    /// The first `n` (1...8) values at `p`; lanes past `n` are zero.
    @inline(__always)
    init(_ p: UnsafePointer<Float>, _ n: Int) {
        if n == 8 { self = UnsafeRawPointer(p).loadUnaligned(as: Self.self); return }
        self.init()
        for j in 0..<n { self[j] = p[j] }
    }

    @inline(__always)
    init(_ p: UnsafeMutablePointer<Float>, _ n: Int) { self.init(UnsafePointer(p), n) }
}

/// Two sums of lane values over 0..<count: Float lanes within blocks of 4096 values (short enough for
/// float32 partial sums), Double across blocks. Lanes past the end of a partial step are zeroed here.
/// Four steps at a time into separate accumulators: with one, each step waited for the previous addition
/// (a 4-cycle chain per 8 values), which made GroupNorm's statistics latency-bound on data already in cache.
@inline(__always)
func blockedSums(_ count: Int, _ lanes: (Int, Int) -> (Lanes, Lanes)) -> (Double, Double) {
    var total0 = 0.0, total1 = 0.0, start = 0
    while start < count {
        let end = min(count, start + 4096)
        var acc0 = Lanes(), acc1 = Lanes(), i = start
        var a0 = Lanes(), b0 = Lanes(), a1 = Lanes(), b1 = Lanes(), a2 = Lanes(), b2 = Lanes()
        while i + 32 <= end {
            let (v0, w0) = lanes(i, 8), (v1, w1) = lanes(i + 8, 8), (v2, w2) = lanes(i + 16, 8), (v3, w3) = lanes(i + 24, 8)
            acc0 += v0; acc1 += w0
            a0 += v1; b0 += w1
            a1 += v2; b1 += w2
            a2 += v3; b2 += w3
            i += 32
        }
        acc0 += a0; acc1 += b0
        a1 += a2; b1 += b2
        acc0 += a1; acc1 += b1
        while i + 8 <= end {
            let (v0, v1) = lanes(i, 8)
            acc0 += v0
            acc1 += v1
            i += 8
        }
        if i < end {
            let n = end - i, (v0, v1) = lanes(i, n)
            let past = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= Int32(n)
            acc0 += v0.replacing(with: 0, where: past)
            acc1 += v1.replacing(with: 0, where: past)
        }
        total0 += Double(acc0.sum())
        total1 += Double(acc1.sum())
        start = end
    }
    return (total0, total1)
}

/// The sum of `count` contiguous values (`blockedSums` of one series).
@inline(__always)
func spanSum(_ p: UnsafePointer<Float>, _ count: Int) -> Double {
    blockedSums(count) { i, n in (Lanes(p + i, n), Lanes()) }.0
}

/// Mean and 1 / sqrt(biased variance + eps) of `count` contiguous values. Two passes (the second finds
/// the span in cache): the one-pass E[x²] - E[x]² cancels badly when the mean is large.
@inline(__always)
func spanStatistics(_ p: UnsafePointer<Float>, _ count: Int, eps: Float) -> (mean: Float, rstd: Float) {
    let total = spanSum(p, count)
    let mean = Float(total / Double(count))
    let squares = blockedSums(count) { i, n in let d = Lanes(p + i, n) - mean; return (d * d, Lanes()) }.0
    return (mean, Float(1 / (squares / Double(count) + Double(eps)).squareRoot()))
}

/// e^x without a library call, so loops that use it vectorize (Cephes expf: 2^k times a degree-6
/// polynomial on [-ln2/2, ln2/2]; relative error about 2e-7). Inputs are clamped to [-87, 87].
@inline(__always)
func fastExp(_ x: Float) -> Float {
    let x = x < -87 ? -87 : (x > 87 ? 87 : x)
    let shifter: Float = 12_582_912                               // 1.5·2^23: adding it rounds to an integer
    let kShifted = shifter.addingProduct(x, 1.442_695_04)
    let k = kShifted - shifter
    let r = x.addingProduct(k, -0.693_359_375).addingProduct(k, 2.121_944_4e-4)   // x - k ln2, ln2 split in two
    var p = Float(1.398_199_950_7e-3).addingProduct(r, 1.987_569_15e-4)
    p = Float(8.333_451_907_3e-3).addingProduct(p, r)
    p = Float(4.166_579_589_4e-2).addingProduct(p, r)
    p = Float(1.666_666_545_9e-1).addingProduct(p, r)
    p = Float(5.000_000_120_1e-1).addingProduct(p, r)
    p = (r + 1).addingProduct(p, r * r)
    // k sits in the low mantissa bits of kShifted (bit pattern 0x4B40_0000 + k); move it to the exponent.
    return p * Float(bitPattern: (kShifted.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
}
