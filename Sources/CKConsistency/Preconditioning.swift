// Consistency-model scalings with the sigma_min offset (iCT), and EDM's (the CTM/EDM teacher).
import Glibc

/// f(x, sigma) = cSkip x + cOut F(cIn x, sigma). Boundary condition: cSkip(sigmaMin) == 1, cOut(sigmaMin) == 0.
/// Song et al. 2023 (Consistency Models), Appendix C; algorithms.md 1.1.
public struct Preconditioning: Sendable {
    public var sigmaData: Float = 0.5, sigmaMin: Float = 0.002

    public init(sigmaData: Float = 0.5, sigmaMin: Float = 0.002) {
        self.sigmaData = sigmaData
        self.sigmaMin = sigmaMin
    }

    // Note the asymmetry: cOut's numerator uses sigma - sigmaMin, its denominator plain sigma^2.
    public func cSkip(_ s: Float) -> Float { sd2 / ((s - sigmaMin) * (s - sigmaMin) + sd2) }
    public func cOut(_ s: Float) -> Float { sigmaData * (s - sigmaMin) / (sd2 + s * s).squareRoot() }
    public func cIn(_ s: Float) -> Float { 1 / (sd2 + s * s).squareRoot() }
    public func cNoise(_ s: Float) -> Float { 0.25 * logf(s) }

    /// EDM's scalings (Karras et al. 2022), no sigma_min offset: used by the EDM denoiser and CTM's g.
    public func edmCSkip(_ s: Float) -> Float { sd2 / (s * s + sd2) }
    public func edmCOut(_ s: Float) -> Float { s * sigmaData / (s * s + sd2).squareRoot() }

    private var sd2: Float { sigmaData * sigmaData }
}
