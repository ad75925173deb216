// Per-sample distances for consistency training: pseudo-Huber (iCT) and Cauchy (latent CT).
import CKTensor

/// Sum of squared differences per sample: diff (N, ...) -> (N).
func squaredNormPerSample(_ diff: Tensor) -> Tensor {
    diff.squared().reshaped([diff.shape[0], -1]).sum(alongAxes: [1])
}

/// iCT's pseudo-Huber, paper form: sqrt(sum_j (a-b)^2 + c^2) - c per sample (algorithms.md 1.3).
public func pseudoHuber(_ diff: Tensor, c: Float) -> Tensor {
    (squaredNormPerSample(diff) + c * c).sqrt() - c
}

/// The LCT code's mean form: sqrt(mean_j (a-b)^2 + c^2) - c. A different loss; offered only as an option.
public func pseudoHuberMean(_ diff: Tensor, c: Float) -> Tensor {
    let d = Float(diff.count / max(diff.shape[0], 1))
    return (squaredNormPerSample(diff) / d + c * c).sqrt() - c
}

/// Latent CT's Cauchy loss: ln(1 + mean_j (a-b)^2 / (2 c^2)) per sample (algorithms.md 2.1).
public func cauchy(_ diff: Tensor, c: Float) -> Tensor {
    let d = Float(diff.count / max(diff.shape[0], 1))
    return (squaredNormPerSample(diff) * (1 / (2 * c * c * d)) + 1).log()
}

/// iCT's default c for samples of d elements: 0.00054 sqrt(d).
public func ictHuberC(sampleSize d: Int) -> Float { 0.00054 * Float(d).squareRoot() }
