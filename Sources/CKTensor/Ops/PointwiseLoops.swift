// The SiLU loops every op runs (the SiLU op, its gradient, GroupNorm's fused SiLU) and the noise-level embedding's
// sines and cosines, in one place: CKPointwise's AVX-512 loops where the CPU has them, else the Swift loops (the
// same bits for SiLU) and the C library's sinf and cosf.
import CKPointwise
#if canImport(Glibc)
import Glibc
#endif

public enum NativePointwise {
    /// Whether this build and CPU have the AVX-512 loops.
    public static let available = ck_pointwise_available() == 1

    /// CK_POINTWISE=swift runs the Swift loops, for A/B timing; tests set it to compare the two.
    nonisolated(unsafe) public static var runs: Bool = {
        if let raw = getenv("CK_POINTWISE"), String(cString: raw) == "swift" { return false }
        return available
    }()
}

/// o[i] = silu(x[i]) for i in r.
@inline(__always)
func siluLoop(_ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
    if NativePointwise.runs { ck_silu(x + r.lowerBound, o + r.lowerBound, r.count); return }
    unaryLoop(SiLU(), x, o, r)
}

/// o[i] = g[i] silu'(x[i]) for i in r.
@inline(__always)
func siluGradientLoop(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
    if NativePointwise.runs { ck_silu_gradient(g + r.lowerBound, x + r.lowerBound, o + r.lowerBound, r.count); return }
    binaryLoop(SiLUGrad(), g, x, o, r)
}

/// y[i] = silu(z) with z = (x[i] - shift) scale + offset, for i in 0 ..< n.
@inline(__always)
func affineSiLULoop(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, shift: Float, scale: Float, offset: Float) {
    if NativePointwise.runs { ck_affine_silu(x, y, n, shift, scale, offset); return }
    for i in 0..<n { y[i] = SiLU()((x[i] - shift) * scale + offset) }
}

/// dz[i] = g[i] silu'(z) with z = (x[i] - shift) scale + offset, for i in 0 ..< n.
@inline(__always)
func affineSiLUGradientLoop(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dz: UnsafeMutablePointer<Float>, _ n: Int,
                            shift: Float, scale: Float, offset: Float) {
    if NativePointwise.runs { ck_affine_silu_gradient(g, x, dz, n, shift, scale, offset); return }
    for i in 0..<n { dz[i] = SiLUGrad()(g[i], (x[i] - shift) * scale + offset) }
}

/// sines[i] = sin(x[i]) and cosines[i] = cos(x[i]) for i in 0 ..< count: the AVX-512 loop (within 2.5e-7 of the
/// true values) or the C library's sinf and cosf.
public func sinesAndCosines(_ x: UnsafePointer<Float>, sines: UnsafeMutablePointer<Float>, cosines: UnsafeMutablePointer<Float>,
                            count: Int) {
    if NativePointwise.runs { ck_sincos(x, sines, cosines, count); return }
    for i in 0..<count { sines[i] = sinf(x[i]); cosines[i] = cosf(x[i]) }
}
