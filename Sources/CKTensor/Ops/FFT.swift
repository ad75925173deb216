// Real 2-D FFTs through FFTW (single precision): the one place that calls FFTW. Plans are made once per
// plane size and reused; FFTW_UNALIGNED lets any buffer go through a cached plan.
import CFFTW
import Foundation

public enum FFT {
    /// Complex values in the half spectrum of an H x W real plane: H x (W/2 + 1).
    public static func halfSpectrumCount(height h: Int, width w: Int) -> Int { h * (w / 2 + 1) }

    /// Forward DFT (unnormalised) of `plane` (H x W, row-major) into `spectrum`: H x (W/2+1) complex values,
    /// interleaved (re, im). `plane` is not modified.
    public static func forward(_ plane: UnsafePointer<Float>, height h: Int, width w: Int, spectrum: UnsafeMutablePointer<Float>) {
        let plans = PlanCache.shared.plans(h, w)
        spectrum.withMemoryRebound(to: fftwf_complex.self, capacity: halfSpectrumCount(height: h, width: w)) { out in
            fftwf_execute_dft_r2c(plans.forward, UnsafeMutablePointer(mutating: plane), out)
        }
    }

    /// Inverse DFT of a Hermitian half spectrum back to an H x W plane, divided by H W so that
    /// inverse(forward(x)) == x. `spectrum` is overwritten (FFTW's c2r works in place on its input).
    public static func inverse(_ spectrum: UnsafeMutablePointer<Float>, height h: Int, width w: Int, plane: UnsafeMutablePointer<Float>) {
        let plans = PlanCache.shared.plans(h, w)
        spectrum.withMemoryRebound(to: fftwf_complex.self, capacity: halfSpectrumCount(height: h, width: w)) { input in
            fftwf_execute_dft_c2r(plans.inverse, input, plane)
        }
        let scale = 1 / Float(h * w)
        for i in 0..<(h * w) { plane[i] *= scale }
    }
}

/// FFTW plans per (H, W). Planning is not thread-safe in FFTW, so it happens under a lock; executing a
/// plan on new arrays (fftwf_execute_dft_*) is.
private final class PlanCache: @unchecked Sendable {
    static let shared = PlanCache()
    struct Plans { let forward: fftwf_plan, inverse: fftwf_plan }
    private var plans: [[Int]: Plans] = [:]
    private let lock = NSLock()

    func plans(_ h: Int, _ w: Int) -> Plans {
        lock.lock()
        defer { lock.unlock() }
        if let p = plans[[h, w]] { return p }
        // Scratch arrays only for planning: FFTW_ESTIMATE does not touch them, and execution uses new arrays.
        let real = fftwf_alloc_real(h * w)!, complex = fftwf_alloc_complex(FFT.halfSpectrumCount(height: h, width: w))!
        defer { fftwf_free(real); fftwf_free(complex) }
        let flags = UInt32(FFTW_ESTIMATE) | UInt32(FFTW_UNALIGNED)
        let p = Plans(forward: fftwf_plan_dft_r2c_2d(Int32(h), Int32(w), real, complex, flags)!,
                      inverse: fftwf_plan_dft_c2r_2d(Int32(h), Int32(w), complex, real, flags)!)
        plans[[h, w]] = p
        return p
    }
}
