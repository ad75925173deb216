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
    applyGradients(summing: [gradients], optimizer: &optimizer, maxGradientNorm: maxGradientNorm)
}

/// Applies the sum of several lists of gradients (the pieces of a batch, added in order), clipped when
/// `maxGradientNorm` is set: then the sum is taken first, for its norm; otherwise the optimizer adds the
/// parts as it reads them. Returns the norm before clipping (nil without clipping).
@discardableResult
public func applyGradients(summing parts: [[Tensor]], optimizer: inout some Optimizer, maxGradientNorm: Float? = nil) -> Float? {
    guard let maxGradientNorm else {
        optimizer.step(summing: parts)
        return nil
    }
    var parts = parts
    var gradients = parts.takeSum()
    let norm = clipGradientNorm(&gradients, maxNorm: maxGradientNorm)
    optimizer.step(gradients)
    return norm
}
