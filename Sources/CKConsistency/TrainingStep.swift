// One optimisation step of any loss: gradients by the tape, optional clipping, the optimizer's update.
import CKTensor
import CKNN

/// Differentiates `loss` with respect to `parameters`, clips when `maxGradientNorm` is set, and
/// applies `optimizer`. Returns the loss value and the gradient norm before clipping (nil without clipping).
public func applyGradients(of loss: Tensor, to parameters: [Parameter], optimizer: inout some Optimizer,
                           maxGradientNorm: Float? = nil) -> (loss: Float, gradientNorm: Float?) {
    var gradients = Tape.gradients(of: loss, wrt: parameters.map(\.value))
    var norm: Float? = nil
    if let maxGradientNorm { norm = clipGradientNorm(&gradients, maxNorm: maxGradientNorm) }
    optimizer.step(gradients)
    return (loss.scalar, norm)
}
