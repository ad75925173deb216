// Optimizers (Adam, RAdam) with PyTorch's exact update rules, updating parameters in place.
import CKTensor
#if canImport(Glibc)
import Glibc
#endif
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Updates a fixed list of parameters from their gradients. State (moments, step counter)
/// round-trips through a checkpoint under stable names.
public protocol Optimizer {
    var parameters: [Parameter] { get }
    var learningRate: Float { get set }
    /// Steps taken so far (PyTorch's `state['step']`).
    var stepCount: Int { get }
    /// `gradients[i]` belongs to `parameters[i]` and has its shape.
    mutating func step(_ gradients: [Tensor])
    /// Per-parameter state tensors, e.g. `adam.m.<param name>`.
    var state: [(String, Tensor)] { get }
    /// Scalar state (the step counter) as metadata entries.
    var stateMetadata: [String: String] { get }
    /// Restores what `state` and `stateMetadata` saved; throws if the checkpoint lacks or mismatches it.
    mutating func loadState(from checkpoint: Checkpoint) throws
}

extension Optimizer {
    /// Adds this optimizer's tensors and metadata to `checkpoint`.
    public func save(into checkpoint: inout Checkpoint) {
        checkpoint.append(state)
        for (k, v) in stateMetadata { checkpoint.metadata[k] = v }
    }
}

// MARK: - Shared moment bookkeeping

/// First and second moments per parameter, stored as tensors so they export without copying.
struct Moments {
    var m: [Tensor], v: [Tensor]
    init(_ parameters: [Parameter]) {
        m = parameters.map { Tensor(zeros: $0.shape) }
        v = m
    }

    func state(prefix: String, _ parameters: [Parameter]) -> [(String, Tensor)] {
        zip(parameters, m).map { ("\(prefix).m.\($0.name)", $1) } + zip(parameters, v).map { ("\(prefix).v.\($0.name)", $1) }
    }

    mutating func load(prefix: String, _ parameters: [Parameter], from checkpoint: Checkpoint) throws {
        var newM: [Tensor] = [], newV: [Tensor] = []
        for p in parameters {
            newM.append(try checkpoint.requireTensor("\(prefix).m.\(p.name)", shape: p.shape))
            newV.append(try checkpoint.requireTensor("\(prefix).v.\(p.name)", shape: p.shape))
        }
        m = newM
        v = newV
    }
}

func checkGradients(_ op: String, _ gradients: [Tensor], _ parameters: [Parameter]) {
    precondition(gradients.count == parameters.count, "\(op).step: \(gradients.count) gradients for \(parameters.count) parameters")
    for (g, p) in zip(gradients, parameters) {
        precondition(g.shape == p.shape, "\(op).step: gradient \(g.shape) for parameter \(p.name) \(p.shape)")
    }
}

/// How the parameter moves once the moments are updated (scalars already bias-corrected).
enum MomentRule {
    case adaptive(scale: Float, vScale: Float, eps: Float)    // p -= scale * m / (sqrt(v) * vScale + eps)
    case plain(scale: Float)                                  // p -= scale * m

    /// The update for four lanes.
    @inline(__always)
    func delta(_ m: SIMD4<Float>, _ v: SIMD4<Float>) -> SIMD4<Float> {
        switch self {
        case let .adaptive(scale, vScale, eps):
            return SIMD4(repeating: scale) * (m / (sqrt4(v) * SIMD4(repeating: vScale) + SIMD4(repeating: eps)))
        case let .plain(scale):
            return SIMD4(repeating: scale) * m
        }
    }
}

/// sqrt on four lanes in one instruction where we can name it: Swift's SIMD `squareRoot()` goes
/// lane by lane, and a scalar sqrt per element makes Adam compute-bound (3x slower at 1M parameters).
@inline(__always)
func sqrt4(_ x: SIMD4<Float>) -> SIMD4<Float> {
    #if arch(x86_64)
    return _mm_sqrt_ps(x)
    #else
    return x.squareRoot()
    #endif
}

/// The moment update shared by Adam and RAdam, then the parameter update of `rule`:
///     g <- g + wd * p (only when wd != 0);   m <- m + (1 - beta1) (g - m)   (torch: m.lerp_(g, 1 - beta1));
///     v <- beta2 v + (1 - beta2) g^2.
/// Four lanes at a time on raw buffers; all parameters together are split over the threads once (a split
/// per tensor woke the threads once per tensor: mlp-toy's Adam took 0.25 ms on two threads, 0.29 ms on one).
func momentStep(_ parameters: [Parameter], _ gradients: [Tensor], _ moments: inout Moments,
                beta1: Float, beta2: Float, weightDecay: Float, rule: MomentRule) {
    withMomentBuffers(parameters, gradients, &moments) { buffers in
        Parallel.forEachSpan(buffers.map(\.count)) { k, range in
            let b = buffers[k]
            momentKernel(b.p, b.g, b.m, b.v, range, beta1: beta1, beta2: beta2, weightDecay: weightDecay, rule: rule)
        }
    }
}

/// One parameter's buffers for its update: values, gradient, first and second moments (`count` floats each).
struct MomentBuffers {
    let p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let count: Int
}

/// Runs `body` with the buffers of every parameter at once: one access per tensor, nested (empty tensors left out).
func withMomentBuffers(_ parameters: [Parameter], _ gradients: [Tensor], _ moments: inout Moments,
                       _ body: ([MomentBuffers]) -> Void) {
    moments.m.withUnsafeMutableBufferPointer { m in
        moments.v.withUnsafeMutableBufferPointer { v in
            var buffers: [MomentBuffers] = []
            buffers.reserveCapacity(parameters.count)
            func enter(_ i: Int) {
                guard i < parameters.count else { return body(buffers) }
                gradients[i].storage.withUnsafeBufferPointer { g in
                    m[i].storage.withUnsafeMutableBufferPointer { mi in
                        v[i].storage.withUnsafeMutableBufferPointer { vi in
                            parameters[i].update { p in
                                if let pp = p.baseAddress, let gp = g.baseAddress, let mp = mi.baseAddress, let vp = vi.baseAddress {
                                    buffers.append(MomentBuffers(p: pp, g: gp, m: mp, v: vp, count: p.count))
                                }
                                enter(i + 1)
                            }
                        }
                    }
                }
            }
            enter(0)
        }
    }
}

// p, g, m, v: one parameter's buffers (same count); range: the slice this thread owns.
@inline(__always)
func momentKernel(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                  _ v: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                  beta1: Float, beta2: Float, weightDecay: Float, rule: MomentRule) {
    let a1 = SIMD4<Float>(repeating: 1 - beta1), b2 = SIMD4<Float>(repeating: beta2)
    let a2 = SIMD4<Float>(repeating: 1 - beta2), wd = SIMD4<Float>(repeating: weightDecay)
    let decays = weightDecay != 0
    // One block of four lanes, or fewer at the end (missing lanes compute on zeros and are not stored).
    @inline(__always)
    func block(_ j: Int, _ lanes: Int) {
        var pj = SIMD4<Float>(), gj = SIMD4<Float>(), mj = SIMD4<Float>(), vj = SIMD4<Float>()
        if lanes == 4 {
            pj = UnsafeRawPointer(p + j).loadUnaligned(as: SIMD4<Float>.self)
            gj = UnsafeRawPointer(g + j).loadUnaligned(as: SIMD4<Float>.self)
            mj = UnsafeRawPointer(m + j).loadUnaligned(as: SIMD4<Float>.self)
            vj = UnsafeRawPointer(v + j).loadUnaligned(as: SIMD4<Float>.self)
        } else {
            for k in 0..<lanes { pj[k] = p[j + k]; gj[k] = g[j + k]; mj[k] = m[j + k]; vj[k] = v[j + k] }
        }
        if decays { gj += wd * pj }                        // L2 weight decay, as torch
        mj += a1 * (gj - mj)
        vj = b2 * vj + a2 * (gj * gj)
        pj -= rule.delta(mj, vj)
        if lanes == 4 {
            UnsafeMutableRawPointer(p + j).storeBytes(of: pj, as: SIMD4<Float>.self)
            UnsafeMutableRawPointer(m + j).storeBytes(of: mj, as: SIMD4<Float>.self)
            UnsafeMutableRawPointer(v + j).storeBytes(of: vj, as: SIMD4<Float>.self)
        } else {
            for k in 0..<lanes { p[j + k] = pj[k]; m[j + k] = mj[k]; v[j + k] = vj[k] }
        }
    }
    var j = range.lowerBound
    while j + 4 <= range.upperBound { block(j, 4); j += 4 }
    if j < range.upperBound { block(j, range.upperBound - j) }
}

// MARK: - Adam

/// Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980) exactly as `torch.optim.Adam`
/// (amsgrad off, weight decay as L2 added to the gradient):
///
///     g  <- g + weightDecay * p                      (only when weightDecay != 0)
///     m  <- beta1 * m + (1 - beta1) * g
///     v  <- beta2 * v + (1 - beta2) * g^2
///     p  <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
public struct Adam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var stepCount = 0
    var moments: Moments

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        moments = Moments(parameters)
    }

    public mutating func step(_ gradients: [Tensor]) {
        checkGradients("Adam", gradients, parameters)
        stepCount += 1
        // Scalars in double, as PyTorch computes them in Python floats.
        let t = Double(stepCount)
        let bc1 = 1 - Glibc.pow(Double(beta1), t), bc2 = 1 - Glibc.pow(Double(beta2), t)
        let stepSize = Float(Double(learningRate) / bc1), invBc2Sqrt = Float(1 / bc2.squareRoot())
        // torch: p.addcdiv_(m, sqrt(v) / sqrt(bc2) + eps, value: -lr / bc1); the division by sqrt(bc2)
        // becomes a multiplication by its reciprocal (one rounding apart).
        momentStep(parameters, gradients, &moments, beta1: beta1, beta2: beta2, weightDecay: weightDecay,
                   rule: .adaptive(scale: stepSize, vScale: invBc2Sqrt, eps: eps))
    }

    public var state: [(String, Tensor)] { moments.state(prefix: "adam", parameters) }
    public var stateMetadata: [String: String] { ["adam.step": String(stepCount)] }

    public mutating func loadState(from checkpoint: Checkpoint) throws {
        let step = try checkpoint.intMetadata("adam.step")
        try moments.load(prefix: "adam", parameters, from: checkpoint)
        stepCount = step
    }
}

// MARK: - RAdam

/// Rectified Adam (Liu et al. 2020, https://arxiv.org/abs/1908.03265) exactly as `torch.optim.RAdam`
/// (weight decay as L2 added to the gradient, not decoupled):
///
///     g  <- g + weightDecay * p                      (only when weightDecay != 0)
///     m  <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
///     mHat = m / (1 - beta1^t)
///     rhoInf = 2 / (1 - beta2) - 1;        rhoT = rhoInf - 2 t beta2^t / (1 - beta2^t)
///     if rhoT > 5:  r = sqrt((rhoT - 4)(rhoT - 2) rhoInf / ((rhoInf - 4)(rhoInf - 2) rhoT))
///                   p <- p - lr * mHat * r * sqrt(1 - beta2^t) / (sqrt(v) + eps)
///     else:         p <- p - lr * mHat                 (un-adapted: variance estimate not yet trusted)
public struct RAdam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var stepCount = 0
    var moments: Moments

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        moments = Moments(parameters)
    }

    public mutating func step(_ gradients: [Tensor]) {
        checkGradients("RAdam", gradients, parameters)
        stepCount += 1
        let t = Double(stepCount), b2t = Glibc.pow(Double(beta2), t)
        let bc1 = 1 - Glibc.pow(Double(beta1), t), bc2 = 1 - b2t
        let rhoInf = 2 / (1 - Double(beta2)) - 1
        let rhoT = rhoInf - 2 * t * b2t / bc2
        if rhoT > 5 {
            let rect = ((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT)).squareRoot()
            // torch: p -= (m / bc1) * lr * (sqrt(bc2) / (sqrt(v) + eps)) * rect
            let scale = Float(Double(learningRate) / bc1 * rect * bc2.squareRoot())
            momentStep(parameters, gradients, &moments, beta1: beta1, beta2: beta2, weightDecay: weightDecay,
                       rule: .adaptive(scale: scale, vScale: 1, eps: eps))
        } else {
            // Variance estimate not yet trustworthy: un-adapted momentum step, p -= lr * m / bc1.
            momentStep(parameters, gradients, &moments, beta1: beta1, beta2: beta2, weightDecay: weightDecay,
                       rule: .plain(scale: Float(Double(learningRate) / bc1)))
        }
    }

    public var state: [(String, Tensor)] { moments.state(prefix: "radam", parameters) }
    public var stateMetadata: [String: String] { ["radam.step": String(stepCount)] }

    public mutating func loadState(from checkpoint: Checkpoint) throws {
        let step = try checkpoint.intMetadata("radam.step")
        try moments.load(prefix: "radam", parameters, from: checkpoint)
        stepCount = step
    }
}

// MARK: - By name

/// The optimizers a training config can name; the raw value is the CLI's and the checkpoint's spelling.
public enum OptimizerName: String, CaseIterable, Codable, Sendable {
    case adam, radam

    public func make(parameters: [Parameter], learningRate: Float) -> any Optimizer {
        switch self {
        case .adam: return Adam(parameters: parameters, learningRate: learningRate)
        case .radam: return RAdam(parameters: parameters, learningRate: learningRate)
        }
    }
}
