// 2-D convolution (NCHW, PyTorch weight layout): im2col over chunks of the batch + one sgemm per chunk, each
// thread on its own chunks; 3x3 stride-1 shapes on larger planes go to the Winograd kernels (Conv2DWinograd.swift). Backward beside it: dW summed over chunks, dX as the transposed conv at stride 1
// (col2im otherwise), dB.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

extension Tensor {
    /// Cross-correlation as `torch.nn.functional.conv2d`: x (N, Cin, H, W), weight (Cout, Cin, kH, kW),
    /// bias (Cout) or nil, zero padding on all four sides. Returns (N, Cout, Ho, Wo) with
    /// Ho = (H + 2 padding - kH) / stride + 1 (floor), likewise Wo. Differentiable in all its inputs.
    /// `sampleBias` (N, Cout), when given, is added too, each value over its whole output plane: the U-Net's
    /// time embedding, added as the output is written instead of in a pass of its own.
    public func conv2d(weight: Tensor, bias: Tensor?, sampleBias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
        precondition(rank == 4 && weight.rank == 4,
                     "conv2d: needs input (N, Cin, H, W) and weight (Cout, Cin, kH, kW), got \(shape) and \(weight.shape)")
        precondition(shape[1] == weight.shape[1],
                     "conv2d: input \(shape) has \(shape[1]) channels, weight \(weight.shape) expects \(weight.shape[1])")
        precondition(stride >= 1 && padding >= 0, "conv2d: stride \(stride) and padding \(padding) for input \(shape)")
        let geo = ConvGeometry(input: shape, weight: weight.shape, stride: stride, padding: padding)
        precondition(geo.ho >= 1 && geo.wo >= 1,
                     "conv2d: kernel \(weight.shape) does not fit input \(shape) with padding \(padding)")
        if let bias { precondition(bias.shape == [geo.cout], "conv2d: bias \(bias.shape) for weight \(weight.shape)") }
        if let sampleBias {
            precondition(sampleBias.shape == [geo.n, geo.cout], "conv2d: sample bias \(sampleBias.shape) for output \([geo.n, geo.cout, geo.ho, geo.wo])")
        }

        let y = Tensor(shape: [geo.n, geo.cout, geo.ho, geo.wo]) { out in
            convForward(geo, x: storage, weight: weight.storage, planeBias: planeBias(geo, bias?.storage, sampleBias?.storage),
                        y: out.baseAddress!)
        }
        let needX = requiresGradient, needW = weight.requiresGradient, needB = bias?.requiresGradient ?? false
        let needS = sampleBias?.requiresGradient ?? false
        // x is only read by dW, the weight only by dX: keep neither alive when it is not needed.
        let xv: Tensor? = needW ? detached() : nil
        let wv: Tensor? = needX ? weight.detached() : nil
        let inputs = [self, weight] + [bias, sampleBias].compactMap { $0 }
        let inputShape = shape, weightShape = weight.shape, hasBias = bias != nil, hasSampleBias = sampleBias != nil
        let full = geo
        return y.recorded(inputs: inputs, takesLeadingRows: true) { g in
            // A gradient of the leading samples only (LeadingRows.swift): the backward runs on those samples.
            let samples = g.shape.first ?? 0, gradientInputShape = [samples] + inputShape.dropFirst()
            let geo = samples == full.n ? full : ConvGeometry(input: gradientInputShape, weight: weightShape, stride: stride, padding: padding)
            precondition(g.shape == [geo.n, geo.cout, geo.ho, geo.wo], "conv2d backward: gradient \(g.shape) for output of \(inputShape) * \(weightShape)")
            var dx: Tensor? = nil, dw: Tensor? = nil
            if needX || needW {
                let grads = convBackward(geo, gradient: g.storage, x: xv?.storage, weight: wv?.storage)
                dx = grads.dx.map { Tensor(shape: gradientInputShape, storage: $0) }
                dw = grads.dw.map { Tensor(shape: weightShape, storage: $0) }
            }
            let sums = needB || needS ? planeSums(geo, gradient: g.storage) : []
            var grads = [dx, dw]
            if hasBias { grads.append(needB ? Tensor(shape: [geo.cout], storage: channelSums(geo, planeSums: sums)) : nil) }
            if hasSampleBias { grads.append(needS ? Tensor(shape: [geo.n, geo.cout], storage: sums) : nil) }
            return grads
        }
    }
}

/// bias[co] + sampleBias[j, co] for each output plane j Cout + co, or nil when there is neither.
private func planeBias(_ g: ConvGeometry, _ bias: [Float]?, _ sampleBias: [Float]?) -> [Float]? {
    guard bias != nil || sampleBias != nil else { return nil }
    return (0..<(g.n * g.cout)).map { q in (bias?[q % g.cout] ?? 0) + (sampleBias?[q] ?? 0) }
}

// MARK: - Forward

private func convForward(_ g: ConvGeometry, x: [Float], weight: [Float], planeBias: [Float]?, y: UnsafeMutablePointer<Float>) {
    // x (N, Cin, H, W), weight (Cout, K), planeBias (N Cout) -> y (N, Cout, Ho, Wo). Per chunk of nc samples:
    // cols (K, nc P) = im2col(x); out (Cout, nc P) = weight cols; y = out regrouped to (nc, Cout, P) + bias.
    let winograd = g.winogradKernel
    let u = winograd.map { kernel in weight.withUnsafeBufferPointer { kernel.weights(g, $0.baseAddress!) } } ?? []
    let panels = winograd.flatMap { winogradWeightPanels(g, $0, u: u) }
    withOptionalBuffer(planeBias) { bias in
        _ = x.withUnsafeBufferPointer { xb in
            weight.withUnsafeBufferPointer { wb in
                g.forEachChunk { c in
                    let columns = c.count * g.p
                    let chunkBias = bias.map { $0 + c.start * g.cout }
                    if let winograd {
                        u.withUnsafeBufferPointer { ub in
                            withOptionalBuffer(panels) { pb in
                                winogradForward(g, winograd, x: xb.baseAddress! + c.start * g.cin * g.planeIn, u: ub.baseAddress!,
                                                panels: pb, bias: chunkBias, y: y + c.start * g.cout * g.p, chunk: c)
                            }
                        }
                        return
                    }
                    if g.isPointwise {
                        pointwiseForward(g, x: xb.baseAddress!, weight: wb.baseAddress!, bias: bias, y: y, chunk: c)
                        return
                    }
                    ConvScratch.with(g.k * columns, g.cout * columns) { cols, out in
                        im2col(g, x: xb.baseAddress! + c.start * g.cin * g.planeIn, count: c.count, cols: cols, serial: c.serial)
                        gemm(transposeA: false, transposeB: false, m: g.cout, n: columns, k: g.k,
                             a: wb.baseAddress!, lda: g.k, b: cols, ldb: columns, c: out, ldc: columns)
                        regroup(g, count: c.count, from: out, to: y + c.start * g.cout * g.p, bias: chunkBias, serial: c.serial)
                    }
                }
            }
        }
    }
}

/// `body` with the array's base address, or nil for no array.
private func withOptionalBuffer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// A 1x1 stride-1 conv is a GEMM on each sample's planes as they lie: no im2col copy and no regrouping.
private func pointwiseForward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>, chunk c: ConvChunk) {
    // x (N, Cin, P), weight (Cout, Cin), bias (N Cout) -> y (N, Cout, P): y[j] = weight x[j] + bias[j] for the chunk's j
    for j in c.start..<(c.start + c.count) {
        let out = y + j * g.cout * g.p
        gemm(transposeA: false, transposeB: false, m: g.cout, n: g.p, k: g.cin,
             a: weight, lda: g.cin, b: x + j * g.cin * g.p, ldb: g.p, c: out, ldc: g.p)
        guard let bias else { continue }
        split(g.cout, minimumPerChunk: max(1, Parallel.grain / max(1, g.p)), serial: c.serial) { channels in
            for co in channels {
                let row = out + co * g.p, b = bias[j * g.cout + co]
                for i in 0..<g.p { row[i] += b }
            }
        }
    }
}

/// cols[(ci, a, b), j P + oy Wo + ox] = x[j, ci, oy s - pad + a, ox s - pad + b], zero outside the image.
private func im2col(_ g: ConvGeometry, x: UnsafePointer<Float>, count nc: Int, cols: UnsafeMutablePointer<Float>, serial: Bool) {
    // x (nc, Cin, H, W) -> cols (K, nc P); rows are independent, so they are split over the threads.
    let ld = nc * g.p, taps = g.kh * g.kw
    split(g.k, minimumPerChunk: max(1, Parallel.grain / max(1, ld)), serial: serial) { rows in
        for r in rows {
            let ci = r / taps, a = (r / g.kw) % g.kh, b = r % g.kw
            for j in 0..<nc {
                let plane = x + (j * g.cin + ci) * g.planeIn, dst = cols + r * ld + j * g.p
                if g.preservesSize {
                    shiftedPlane(g, plane, dy: a - g.padding, dx: b - g.padding, dst)
                } else {
                    gatherPlane(g, plane, a: a, b: b, dst)
                }
            }
        }
    }
}

/// dst[oy, ox] = src[oy + dy, ox + dx] on an H x W plane, zero where that falls outside.
/// One flat copy with the offset dy W + dx does the interior: per-row copies of 28 floats
/// spent most of their time in call overhead. Columns that wrapped into the neighbouring row are zeroed after.
@inline(__always)
private func shiftedPlane(_ g: ConvGeometry, _ src: UnsafePointer<Float>, dy: Int, dx: Int, _ dst: UnsafeMutablePointer<Float>) {
    // src (H, W) -> dst (H, W)
    let (h, w) = (g.h, g.w), n = h * w, d = dy * w + dx
    let lo = max(max(0, -dy) * w, -d), hi = min(min(h, h - dy) * w, n - d)
    guard lo < hi else { dst.update(repeating: 0, count: n); return }
    dst.update(repeating: 0, count: lo)
    (dst + lo).update(from: src + lo + d, count: hi - lo)
    (dst + hi).update(repeating: 0, count: n - hi)
    if dx != 0 {
        let c0 = dx < 0 ? 0 : w - dx, c1 = dx < 0 ? -dx : w
        var row = lo / w * w
        while row < hi {
            for c in c0..<c1 { dst[row + c] = 0 }
            row += w
        }
    }
}

/// The general case: any stride and padding, row by row.
@inline(__always)
private func gatherPlane(_ g: ConvGeometry, _ plane: UnsafePointer<Float>, a: Int, b: Int, _ dst: UnsafeMutablePointer<Float>) {
    // plane (H, W) -> dst (Ho, Wo)
    let (lo, hi) = validOutputRange(g, offset: b, size: g.w, outSize: g.wo)
    for oy in 0..<g.ho {
        let iy = oy * g.stride - g.padding + a
        let row = dst + oy * g.wo
        guard iy >= 0 && iy < g.h, lo < hi else { row.update(repeating: 0, count: g.wo); continue }
        for ox in 0..<lo { row[ox] = 0 }
        let src = plane + iy * g.w - g.padding + b      // src[ox * s] is column ox
        if g.stride == 1 {
            for ox in lo..<hi { row[ox] = src[ox] }
        } else {
            for ox in lo..<hi { row[ox] = src[ox * g.stride] }
        }
        for ox in hi..<g.wo { row[ox] = 0 }
    }
}

/// Output columns ox whose input column ox s - pad + offset lies in 0..<size.
@inline(__always)
private func validOutputRange(_ g: ConvGeometry, offset: Int, size: Int, outSize: Int) -> (Int, Int) {
    let shift = g.padding - offset                        // need ox s >= shift and ox s < size + shift
    let lo = shift <= 0 ? 0 : (shift + g.stride - 1) / g.stride
    let hiRaw = size + shift <= 0 ? 0 : (size + shift - 1) / g.stride + 1
    return (min(lo, outSize), min(max(hiRaw, 0), outSize))
}

/// y[j, co, :] = out[co, j P ..< (j+1) P] + bias[j Cout + co]: the GEMM's channel-major chunk back to NCHW.
private func regroup(_ g: ConvGeometry, count nc: Int, from out: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>,
             bias: UnsafePointer<Float>?, serial: Bool) {
    // out (Cout, nc P), bias (nc Cout) -> y (nc, Cout, P)
    let ld = nc * g.p, p = g.p, cout = g.cout
    split(nc * cout, minimumPerChunk: max(1, Parallel.grain / max(1, p)), serial: serial) { range in
        for t in range {
            let j = t / cout, co = t % cout
            let src = out + co * ld + j * p, dst = y + t * p
            if let bias {
                let b = bias[t]
                for i in 0..<p { dst[i] = src[i] + b }
            } else {
                dst.update(from: src, count: p)
            }
        }
    }
}

// MARK: - Backward

/// dX and dW of y = conv(x, weight) given g = dL/dy (N, Cout, Ho, Wo). `x` is passed only when dW is wanted,
/// `weight` only when dX is. Per chunk: gy (Cout, nc P) = g regrouped; dW += gy cols^T; dX = col2im(weight^T gy),
/// or, at stride 1, dX = conv(g, flipped weight), which reuses the forward's fast path.
private func convBackward(_ g: ConvGeometry, gradient grad: [Float], x: [Float]?, weight: [Float]?) -> (dx: [Float]?, dw: [Float]?) {
    let dxCount = g.n * g.cin * g.planeIn, dwCount = g.cout * g.k
    var dx: [Float]? = nil
    if let weight, let t = transposedGeometry(g) {
        dx = [Float](unsafeUninitializedCapacity: dxCount) { buffer, initialized in
            convForward(t, x: grad, weight: flippedWeight(g, weight), planeBias: nil, y: buffer.baseAddress!)
            initialized = dxCount
        }
    }
    let col2imWeight = dx == nil ? weight : nil
    guard x != nil || col2imWeight != nil else { return (dx, nil) }
    if let x, let winograd = g.winogradKernel, col2imWeight == nil {
        let dw = grad.withUnsafeBufferPointer { gb in
            x.withUnsafeBufferPointer { winogradWeightGradient(g, winograd, gradient: gb.baseAddress!, x: $0.baseAddress!) }
        }
        return (dx, dw)
    }
    // Every worker sums dW over its own chunks, worker w into slot w; the slots are added at the end.
    let slots = x == nil ? 0 : Parallel.threadCount
    let dwSlots = UnsafeMutablePointer<Float>.allocate(capacity: max(1, slots * dwCount))
    defer { dwSlots.deallocate() }
    // col2im accumulates into dX, so it starts at zero; it is the returned array itself, not a buffer copied at
    // the end (the stride-2 layers' dX is 3.2 and 1.6 MB per unet-s piece).
    var col2imDX = [Float](repeating: 0, count: col2imWeight == nil ? 0 : dxCount)
    let workers = col2imDX.withUnsafeMutableBufferPointer { dxb in grad.withUnsafeBufferPointer { gb in
        g.forEachChunk { c in
            let columns = c.count * g.p
            ConvScratch.with(g.k * columns, g.cout * columns) { cols, gy in
                gatherGradient(g, count: c.count, from: gb.baseAddress! + c.start * g.cout * g.p, to: gy, serial: c.serial)
                if let x {
                    // dW (Cout, K) += gy (Cout, nc P) cols^T (nc P, K)
                    x.withUnsafeBufferPointer { xb in
                        im2col(g, x: xb.baseAddress! + c.start * g.cin * g.planeIn, count: c.count, cols: cols, serial: c.serial)
                    }
                    gemm(transposeA: false, transposeB: true, m: g.cout, n: g.k, k: columns, a: gy, lda: columns,
                         b: cols, ldb: columns, beta: c.isFirst ? 0 : 1, c: dwSlots + c.worker * dwCount, ldc: g.k)
                }
                if let weight = col2imWeight {
                    // dcols (K, nc P) = weight^T (K, Cout) gy (Cout, nc P); cols is free again, so it holds dcols.
                    weight.withUnsafeBufferPointer { wb in
                        gemm(transposeA: true, transposeB: false, m: g.k, n: columns, k: g.cout,
                             a: wb.baseAddress!, lda: g.k, b: gy, ldb: columns, c: cols, ldc: columns)
                    }
                    col2im(g, cols: cols, count: c.count, dx: dxb.baseAddress! + c.start * g.cin * g.planeIn, serial: c.serial)
                }
            }
        }
    } }
    if col2imWeight != nil { dx = col2imDX }
    guard x != nil else { return (dx, nil) }
    let dw = [Float](unsafeUninitializedCapacity: dwCount) { buffer, initialized in
        for i in 0..<dwCount {
            var acc: Float = workers == 0 ? 0 : dwSlots[i]      // no workers: an empty batch
            for w in 1..<max(1, workers) { acc += dwSlots[w * dwCount + i] }
            buffer[i] = acc
        }
        initialized = dwCount
    }
    return (dx, dw)
}

/// At stride 1, dX is the correlation of g with the weight flipped in space and with Cin and Cout swapped,
/// padded by k - 1 - pad. Nil where that needs a negative or non-square padding (then col2im does it).
private func transposedGeometry(_ g: ConvGeometry) -> ConvGeometry? {
    guard g.stride == 1, g.kh == g.kw, g.padding <= g.kh - 1 else { return nil }
    let t = ConvGeometry(input: [g.n, g.cout, g.ho, g.wo], weight: [g.cin, g.cout, g.kh, g.kw], stride: 1, padding: g.kh - 1 - g.padding)
    precondition(t.ho == g.h && t.wo == g.w, "conv2d backward: transposed conv of \(g) gives \(t.ho)x\(t.wo)")
    return t
}

/// flipped[ci, co, a, b] = weight[co, ci, kH-1-a, kW-1-b]
private func flippedWeight(_ g: ConvGeometry, _ weight: [Float]) -> [Float] {
    // (Cout, Cin, kH, kW) -> (Cin, Cout, kH, kW)
    var out = [Float](repeating: 0, count: weight.count)
    let taps = g.kh * g.kw
    for co in 0..<g.cout {
        for ci in 0..<g.cin {
            for t in 0..<taps { out[(ci * g.cout + co) * taps + t] = weight[(co * g.cin + ci) * taps + taps - 1 - t] }
        }
    }
    return out
}

/// gy[co, j P ..< (j+1) P] = g[j, co, :]: the inverse of `regroup`, without bias.
private func gatherGradient(_ g: ConvGeometry, count nc: Int, from grad: UnsafePointer<Float>, to gy: UnsafeMutablePointer<Float>,
                    serial: Bool) {
    // grad (nc, Cout, P) -> gy (Cout, nc P)
    let ld = nc * g.p, p = g.p, cout = g.cout
    split(nc * cout, minimumPerChunk: max(1, Parallel.grain / max(1, p)), serial: serial) { range in
        for t in range { (gy + (t % cout) * ld + (t / cout) * p).update(from: grad + t * p, count: p) }
    }
}

/// The adjoint of `im2col`: dx[j, ci, iy, ix] += dcols[(ci, a, b), j P + oy Wo + ox] over all taps that read it.
private func col2im(_ g: ConvGeometry, cols: UnsafePointer<Float>, count nc: Int, dx: UnsafeMutablePointer<Float>, serial: Bool) {
    // cols (K, nc P) -> dx (nc, Cin, H, W), zero on entry. Split by input channel: each thread owns its
    // channel's planes, so the accumulation needs no atomics.
    let ld = nc * g.p, taps = g.kh * g.kw
    split(g.cin, minimumPerChunk: max(1, Parallel.grain / max(1, taps * ld)), serial: serial) { channels in
        for ci in channels {
            for a in 0..<g.kh {
                for b in 0..<g.kw {
                    let r = (ci * g.kh + a) * g.kw + b
                    let (lo, hi) = validOutputRange(g, offset: b, size: g.w, outSize: g.wo)
                    guard lo < hi else { continue }
                    for j in 0..<nc {
                        let plane = dx + (j * g.cin + ci) * g.planeIn
                        let src = cols + r * ld + j * g.p
                        for oy in 0..<g.ho {
                            let iy = oy * g.stride - g.padding + a
                            guard iy >= 0 && iy < g.h else { continue }
                            let row = src + oy * g.wo
                            let dst = plane + iy * g.w - g.padding + b   // dst[ox * s] receives column ox
                            if g.stride == 1 {
                                for ox in lo..<hi { dst[ox] += row[ox] }
                            } else {
                                for ox in lo..<hi { dst[ox * g.stride] += row[ox] }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The sum of each gradient plane: grad (N, Cout, P) -> (N Cout), the sample bias's gradient.
private func planeSums(_ g: ConvGeometry, gradient grad: [Float]) -> [Float] {
    [Float](unsafeUninitializedCapacity: g.n * g.cout) { out, initialized in
        grad.withUnsafeBufferPointer { gb in
            let src = gb.baseAddress!, o = out.baseAddress!
            Parallel.forEachChunk(g.n * g.cout, minimumPerChunk: max(1, Parallel.grain / max(1, g.p))) { planes in
                for q in planes { o[q] = Float(spanSum(src + q * g.p, g.p)) }
            }
        }
        initialized = g.n * g.cout
    }
}

/// The channel bias's gradient from the plane sums: (N Cout) -> (Cout), summed over the batch in Double.
private func channelSums(_ g: ConvGeometry, planeSums sums: [Float]) -> [Float] {
    (0..<g.cout).map { co in Float((0..<g.n).reduce(0.0) { $0 + Double(sums[$1 * g.cout + co]) }) }
}
