// Batch Styles Standardization (Scalbert et al. 2024; algorithms.md 5): every image of a batch takes the
// low-frequency Fourier amplitude of one reference image of the batch and keeps its own phase.
import CKTensor

/// Half-width b of the low-frequency square for ratio r on H x W planes: floor(sqrt(r) min(H, W) / 2),
/// capped at (min(H, W) - 1) / 2 so the band never reaches the Nyquist row or column (output stays real).
public func bssHalfWidth(ratio r: Float, height h: Int, width w: Int) -> Int {
    min(Int((r.squareRoot() * Float(min(h, w)) / 2).rounded(.down)), (min(h, w) - 1) / 2)
}

/// x: (B, C, H, W). For every image k and channel c, the amplitude |DFT2(x[k, c])| is replaced on the band
/// |u| <= b, |v| <= b (signed frequencies, i.e. the square centred on DC after fftshift) by the amplitude of
/// x[reference, c]; phases are kept. The reference image is unchanged. r = 0 returns x unchanged.
/// No gradient: it is a transform of clean data before noising.
public func batchStyleStandardization(_ x: Tensor, ratio r: Float, reference: Int) -> Tensor {
    precondition(x.rank == 4, "batchStyleStandardization: needs (B, C, H, W), got \(x.shape)")
    precondition(reference >= 0 && reference < x.shape[0], "batchStyleStandardization: reference \(reference) of \(x.shape[0])")
    precondition(r >= 0 && r <= 1, "batchStyleStandardization: ratio \(r) outside [0, 1]")
    if r == 0 { return x.detached() }
    let (batch, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let b = bssHalfWidth(ratio: r, height: h, width: w), columns = w / 2 + 1
    let plane = h * w, spectrum = 2 * FFT.halfSpectrumCount(height: h, width: w)
    // Half-spectrum indices (row u, column v <= W/2) inside the band; row u is frequency u or u - H.
    var band: [Int] = []
    for u in 0..<h where min(u, h - u) <= b {
        for v in 0...min(b, columns - 1) { band.append(u * columns + v) }
    }
    var out = x.detached().storage
    x.storage.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            Parallel.forEach(channels) { c in
                var referenceAmplitude = [Float](repeating: 0, count: spectrum / 2)
                var work = [Float](repeating: 0, count: spectrum)
                FFT.forward(src.baseAddress! + (reference * channels + c) * plane, height: h, width: w, spectrum: &work)
                for i in band { referenceAmplitude[i] = (work[2 * i] * work[2 * i] + work[2 * i + 1] * work[2 * i + 1]).squareRoot() }
                for k in 0..<batch where k != reference {
                    let offset = (k * channels + c) * plane
                    FFT.forward(src.baseAddress! + offset, height: h, width: w, spectrum: &work)
                    for i in band {
                        let re = work[2 * i], im = work[2 * i + 1], magnitude = (re * re + im * im).squareRoot()
                        let target = referenceAmplitude[i]
                        if magnitude > 0 {
                            work[2 * i] = re * target / magnitude
                            work[2 * i + 1] = im * target / magnitude
                        } else {
                            work[2 * i] = target          // no phase to keep: take phase 0
                            work[2 * i + 1] = 0
                        }
                    }
                    FFT.inverse(&work, height: h, width: w, plane: dst.baseAddress! + offset)
                }
            }
        }
    }
    return Tensor(shape: x.shape, storage: out)
}

/// BSS with the reference image drawn from `rng` (one per batch).
public func batchStyleStandardization(_ x: Tensor, ratio r: Float, rng: inout some RandomNumberGenerator) -> (images: Tensor, reference: Int) {
    let reference = Int(rng.uniformDouble() * Double(x.shape[0]))
    return (batchStyleStandardization(x, ratio: r, reference: min(reference, x.shape[0] - 1)), reference)
}
