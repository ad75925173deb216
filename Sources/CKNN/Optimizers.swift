// Optimizers (Adam, RAdam) with PyTorch's exact update rules, updating parameters in place.
import CKTensor
import CKMoments
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
    /// One update from the sum of several lists of gradients (the pieces of a batch, `CoreShards`), added in
    /// list order as `[[Tensor]].takeSum()` adds them. `parts[p][i]` belongs to `parameters[i]` and has its
    /// shape. The optimizer adds them where it reads each gradient, instead of in a pass of their own.
    mutating func step(summing parts: [[Tensor]])
    /// Per-parameter state tensors, e.g. `adam.m.<param name>`.
    var state: [(String, Tensor)] { get }
    /// Scalar state (the step counter) as metadata entries.
    var stateMetadata: [String: String] { get }
    /// Restores what `state` and `stateMetadata` saved; throws if the checkpoint lacks or mismatches it.
    mutating func loadState(from checkpoint: Checkpoint) throws
}

extension Optimizer {
    /// One update from one list of gradients: `gradients[i]` belongs to `parameters[i]` and has its shape.
    public mutating func step(_ gradients: [Tensor]) { step(summing: [gradients]) }

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

func checkGradients(_ op: String, _ parts: [[Tensor]], _ parameters: [Parameter]) {
    precondition(!parts.isEmpty, "\(op).step: no gradients")
    for gradients in parts {
        precondition(gradients.count == parameters.count, "\(op).step: \(gradients.count) gradients for \(parameters.count) parameters")
        for (g, p) in zip(gradients, parameters) {
            precondition(g.shape == p.shape, "\(op).step: gradient \(g.shape) for parameter \(p.name) \(p.shape)")
        }
    }
}

/// How the parameter moves once the moments are updated (scalars already bias-corrected).
enum MomentRule {
    case adaptive(scale: Float, vScale: Float, eps: Float)    // p -= scale * m / (sqrt(v) * vScale + eps)
    case plain(scale: Float)                                  // p -= scale * m
}

extension MomentRule {
    /// Whether the update runs CKMoments' AVX2 version (where the build has it) instead of the portable Swift
    /// one; CK_MOMENTS=swift picks the Swift one for A/B timing, and the tests run both.
    nonisolated(unsafe) static var native: Bool = {
        guard ck_moments_available() != 0 else { return false }
        guard let raw = getenv("CK_MOMENTS") else { return true }
        return String(cString: raw) != "swift"
    }()

    /// The C update's switch and scalars: (adaptive, scale, vScale, eps).
    var nativeArguments: (Int32, Float, Float, Float) {
        switch self {
        case let .adaptive(scale, vScale, eps): return (1, scale, vScale, eps)
        case let .plain(scale): return (0, scale, 1, 0)
        }
    }
}

/// sqrt on eight lanes in one instruction where we can name it: Swift's SIMD `squareRoot()` goes
/// lane by lane, and a scalar sqrt per element makes Adam compute-bound (3x slower at 1M parameters).
@inline(__always)
func sqrt8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(x86_64)
    return _mm256_sqrt_ps(x)
    #else
    return x.squareRoot()
    #endif
}

/// The moment update shared by Adam and RAdam, then the parameter update of `rule`:
///     g <- parts[0] + parts[1] + ...  (in that order);   g <- g + wd * p (only when wd != 0);
///     m <- m + (1 - beta1) (g - m)   (torch: m.lerp_(g, 1 - beta1));   v <- beta2 v + (1 - beta2) g^2.
/// On raw buffers, eight lanes at a time (CKMoments' AVX2 loop on x86-64, `momentKernel` elsewhere); all
/// parameters together are split over the threads once (a split per tensor woke the threads once per tensor:
/// mlp-toy's Adam took 0.25 ms on two threads, 0.29 ms on one).
/// The parts are added here rather than in a pass of their own: on mlp-toy the update reads memory, not
/// arithmetic, and the separate sum read two gradients and wrote one more.
func momentStep(_ parameters: [Parameter], _ parts: [[Tensor]], _ moments: inout Moments,
                beta1: Float, beta2: Float, weightDecay: Float, rule: MomentRule) {
    withMomentBuffers(parameters, parts, &moments) { buffers in
        Parallel.forEachSpan(buffers.map(\.count)) { k, range in
            let b = buffers[k]
            b.g.withUnsafeBufferPointer { g in
                if MomentRule.native {
                    let (adaptive, scale, vScale, eps) = rule.nativeArguments
                    let parts = UnsafeRawPointer(g.baseAddress!).assumingMemoryBound(to: UnsafePointer<Float>?.self)
                    ck_moment_update(b.p, parts, g.count, b.m, b.v, range.lowerBound, range.upperBound, beta1, beta2,
                                     weightDecay, adaptive, scale, vScale, eps)
                } else {
                    momentKernel(b.p, g, b.m, b.v, range, beta1: beta1, beta2: beta2, weightDecay: weightDecay, rule: rule)
                }
            }
        }
    }
}

/// One parameter's buffers for its update: values, its gradient in each part, first and second moments
/// (`count` floats each).
struct MomentBuffers {
    let p: UnsafeMutablePointer<Float>, g: [UnsafePointer<Float>]
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let count: Int
}

/// Runs `body` with the buffers of every parameter at once: one access per tensor, nested (empty tensors left out).
func withMomentBuffers(_ parameters: [Parameter], _ parts: [[Tensor]], _ moments: inout Moments,
                       _ body: ([MomentBuffers]) -> Void) {
    parts.withValueBuffers { g in
        moments.m.withMutableValueBuffers { m in
            moments.v.withMutableValueBuffers { v in
                var buffers: [MomentBuffers] = []
                buffers.reserveCapacity(parameters.count)
                func enter(_ i: Int) {
                    guard i < parameters.count else { return body(buffers) }
                    parameters[i].update { p in
                        if let pp = p.baseAddress, let mp = m[i].baseAddress, let vp = v[i].baseAddress {
                            buffers.append(MomentBuffers(p: pp, g: g.map { UnsafePointer($0[i].baseAddress!) }, m: mp, v: vp,
                                                         count: p.count))
                        }
                        enter(i + 1)
                    }
                }
                enter(0)
            }
        }
    }
}

// p, m, v: one parameter's buffers (same count); g: its gradient in each part; range: the slice this thread owns.
// The rule, the weight decay and the number of parts hold for the whole loop, so each combination gets a loop of
// its own (`loop` inlined with constants): the four-lane loop before tested the rule and the decay per block.
@inline(__always)
func momentKernel(_ p: UnsafeMutablePointer<Float>, _ g: UnsafeBufferPointer<UnsafePointer<Float>>,
                  _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                  beta1: Float, beta2: Float, weightDecay: Float, rule: MomentRule) {
    typealias Lanes = SIMD8<Float>
    let a1 = Lanes(repeating: 1 - beta1), b2 = Lanes(repeating: beta2)
    let a2 = Lanes(repeating: 1 - beta2), wd = Lanes(repeating: weightDecay)
    @inline(__always)
    func load(_ q: UnsafePointer<Float>, _ j: Int, _ lanes: Int) -> Lanes {
        if lanes == 8 { return UnsafeRawPointer(q + j).loadUnaligned(as: Lanes.self) }
        var x = Lanes()                                  // missing lanes compute on zeros and are not stored
        for k in 0..<lanes { x[k] = q[j + k] }
        return x
    }
    @inline(__always)
    func store(_ x: Lanes, _ q: UnsafeMutablePointer<Float>, _ j: Int, _ lanes: Int) {
        if lanes == 8 { UnsafeMutableRawPointer(q + j).storeBytes(of: x, as: Lanes.self); return }
        for k in 0..<lanes { q[j + k] = x[k] }
    }
    // parts: 1 or 2 read as such, 0 for any number (added in order).
    @inline(__always)
    func loop(decays: Bool, parts: Int, _ delta: (Lanes, Lanes) -> Lanes) {
        @inline(__always)
        func block(_ j: Int, _ lanes: Int) {
            var pj = load(p, j, lanes), gj = load(g[0], j, lanes)
            if parts == 2 {
                gj += load(g[1], j, lanes)
            } else if parts == 0 {
                for q in 1..<g.count { gj += load(g[q], j, lanes) }
            }
            var mj = load(m, j, lanes), vj = load(v, j, lanes)
            if decays { gj += wd * pj }                    // L2 weight decay, as torch
            mj += a1 * (gj - mj)
            vj = b2 * vj + a2 * (gj * gj)
            pj -= delta(mj, vj)
            store(pj, p, j, lanes); store(mj, m, j, lanes); store(vj, v, j, lanes)
        }
        var j = range.lowerBound
        while j + 8 <= range.upperBound { block(j, 8); j += 8 }
        if j < range.upperBound { block(j, range.upperBound - j) }
    }
    @inline(__always)
    func loops(_ delta: (Lanes, Lanes) -> Lanes) {
        switch (weightDecay != 0, g.count) {
        case (false, 1): loop(decays: false, parts: 1, delta)
        case (false, 2): loop(decays: false, parts: 2, delta)
        case (false, _): loop(decays: false, parts: 0, delta)
        case (true, 1): loop(decays: true, parts: 1, delta)
        case (true, 2): loop(decays: true, parts: 2, delta)
        case (true, _): loop(decays: true, parts: 0, delta)
        }
    }
    switch rule {
    case let .adaptive(scale, vScale, eps):
        let s = Lanes(repeating: scale), vs = Lanes(repeating: vScale), e = Lanes(repeating: eps)
        loops { m, v in s * (m / (sqrt8(v) * vs + e)) }
    case let .plain(scale):
        let s = Lanes(repeating: scale)
        loops { m, _ in s * m }
    }
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

    public mutating func step(summing parts: [[Tensor]]) {
        checkGradients("Adam", parts, parameters)
        stepCount += 1
        // Scalars in double, as PyTorch computes them in Python floats.
        let t = Double(stepCount)
        let bc1 = 1 - Glibc.pow(Double(beta1), t), bc2 = 1 - Glibc.pow(Double(beta2), t)
        let stepSize = Float(Double(learningRate) / bc1), invBc2Sqrt = Float(1 / bc2.squareRoot())
        // torch: p.addcdiv_(m, sqrt(v) / sqrt(bc2) + eps, value: -lr / bc1); the division by sqrt(bc2)
        // becomes a multiplication by its reciprocal (one rounding apart).
        momentStep(parameters, parts, &moments, beta1: beta1, beta2: beta2, weightDecay: weightDecay,
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

    public mutating func step(summing parts: [[Tensor]]) {
        checkGradients("RAdam", parts, parameters)
        stepCount += 1
        let t = Double(stepCount), b2t = Glibc.pow(Double(beta2), t)
        let bc1 = 1 - Glibc.pow(Double(beta1), t), bc2 = 1 - b2t
        let rhoInf = 2 / (1 - Double(beta2)) - 1
        let rhoT = rhoInf - 2 * t * b2t / bc2
        if rhoT > 5 {
            let rect = ((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT)).squareRoot()
            // torch: p -= (m / bc1) * lr * (sqrt(bc2) / (sqrt(v) + eps)) * rect
            let scale = Float(Double(learningRate) / bc1 * rect * bc2.squareRoot())
            momentStep(parameters, parts, &moments, beta1: beta1, beta2: beta2, weightDecay: weightDecay,
                       rule: .adaptive(scale: scale, vScale: 1, eps: eps))
        } else {
            // Variance estimate not yet trustworthy: un-adapted momentum step, p -= lr * m / bc1.
            momentStep(parameters, parts, &moments, beta1: beta1, beta2: beta2, weightDecay: weightDecay,
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
