// One optimisation step of any loss: gradients by the tape, optional clipping, the optimizer's update.
import CKTensor

/// A loss that became NaN or infinite; the weights were not changed by it.
public struct NonFiniteLoss: Error, CustomStringConvertible, Equatable {
    public let iteration: Int, loss: Float
    public init(iteration: Int, loss: Float) { self.iteration = iteration; self.loss = loss }
    public var description: String { "the loss became \(loss) at iteration \(iteration); the weights were not changed by it" }
}

/// Differentiates `loss` with respect to `parameters`, clips when `maxGradientNorm` is set, and
/// applies `optimizer`. Returns the loss value and the gradient norm before clipping (nil without clipping).
public func applyGradients(of loss: Tensor, to parameters: [Parameter], optimizer: inout some Optimizer,
                           maxGradientNorm: Float? = nil) -> (loss: Float, gradientNorm: Float?) {
    let norm = applyGradients(Tape.gradients(of: loss, wrt: parameters.map(\.value)), optimizer: &optimizer,
                              maxGradientNorm: maxGradientNorm)
    return (loss.scalar, norm)
}

/// Applies ready gradients (one per parameter, in the optimizer's order), clipped when `maxGradientNorm` is set.
/// Returns the norm before clipping (nil without clipping).
@discardableResult
public func applyGradients(_ gradients: [Tensor], optimizer: inout some Optimizer, maxGradientNorm: Float? = nil) -> Float? {
    var gradients = gradients
    var norm: Float? = nil
    if let maxGradientNorm { norm = clipGradientNorm(&gradients, maxNorm: maxGradientNorm) }
    optimizer.step(gradients)
    return norm
}
