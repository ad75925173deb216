// Shared test helpers: closeness assertions that say what differed, and central-difference gradient checks.
import XCTest
import CKTensor

/// Fails unless every |got - want| <= atol + rtol * |want|; prints expected, observed and the largest difference.
public func assertClose(_ got: [Float], _ want: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    if let problem = closenessProblem(got: got, want: want, atol: atol, rtol: rtol) {
        XCTFail("\(message): \(problem)", file: file, line: line)
    }
}

public func assertClose(_ got: Float, _ want: Float, atol: Float = 1e-5, rtol: Float = 1e-5,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    assertClose([got], [want], atol: atol, rtol: rtol, message, file: file, line: line)
}

public func assertClose(_ got: Double, _ want: Double, atol: Double = 1e-9, rtol: Double = 1e-9,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    if let problem = closenessProblem(got: [got], want: [want], atol: atol, rtol: rtol) {
        XCTFail("\(message): \(problem)", file: file, line: line)
    }
}

/// Runs `body` with `threads` threads (the pieces of a batch, one split of many tensors), then restores the count.
public func withThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
    let before = Parallel.configuredThreadCount
    Parallel.configure(threads: threads)
    defer { Parallel.configure(threads: before) }
    return try body()
}

/// Runs `body` with each implementation behind a switch: the native (C) one, where `native` (the switch's value)
/// says the build has it, then the portable Swift one; `body` gets the implementation's name from `names`, for
/// its messages. The switch is restored afterwards.
public func withEachImplementation(_ native: Bool, set: (Bool) -> Void, names: (native: String, portable: String),
                                   _ body: (String) -> Void) {
    defer { set(native) }
    for choice in native ? [true, false] : [false] {
        set(choice)
        body(choice ? names.native : names.portable)
    }
}

/// The L2 norm of `got - want` and of `want`, in Double: for tensors that agree as wholes (two processes, two
/// pieces of a batch) where single elements may not. Arrays of different lengths differ infinitely.
public func l2Difference(_ got: [Float], _ want: [Float]) -> (difference: Double, norm: Double) {
    let norm = want.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
    guard got.count == want.count else { return (.infinity, norm) }
    let difference = zip(got, want).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
    return (difference, norm)
}

/// Why `got` is not close to `want`, or nil when it is. Pure, so the support tests can check the verdicts
/// (swift-corelibs-xctest has no XCTExpectFailure). A NaN, infinite or negative tolerance is itself a
/// problem: every comparison with a NaN bound is false, which made `!(d <= bound)`-style checks pass.
/// NaN and infinite values fail; so does comparing nothing, which is what a missing vector column used to produce.
public func closenessProblem<T: BinaryFloatingPoint>(got: [T], want: [T], atol: T, rtol: T) -> String? {
    for (name, tolerance) in [("atol", atol), ("rtol", rtol)] where !(tolerance.isFinite && tolerance >= 0) {
        return "bad tolerance \(name) = \(tolerance): must be finite and non-negative"
    }
    guard got.count == want.count else { return "\(got.count) values, expected \(want.count)" }
    guard !want.isEmpty else { return "no values to compare" }
    var worst = 0, worstExcess = -T.infinity, maxDiff: T = 0
    for i in got.indices {
        // A non-finite value never passes: for want = inf the bound is inf too, and inf - inf is NaN.
        let finite = got[i].isFinite && want[i].isFinite, d = abs(got[i] - want[i])
        maxDiff = max(maxDiff, finite ? d : .infinity)
        let excess = finite ? d - (atol + rtol * abs(want[i])) : .infinity
        if excess > worstExcess { worstExcess = excess; worst = i }
    }
    guard worstExcess > 0 else { return nil }
    return "at [\(worst)] expected \(want[worst]), observed \(got[worst]); max diff \(maxDiff) (atol \(atol), rtol \(rtol))"
}

/// Checks the tape's gradients of `sum(f(inputs) * w)` (w fixed random weights, so every output value
/// matters differently) against central differences in float64-accumulated float32.
/// Inputs are drawn N(0,1) unless `inputs` are given.
public func gradCheck(shapes: [[Int]] = [], inputs given: [Tensor]? = nil, seed: UInt64 = 1,
                      eps: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2,
                      file: StaticString = #filePath, line: UInt = #line,
                      _ f: ([Tensor]) -> Tensor) {
    var rng = SplitMix64(seed: seed)
    let inputs = given ?? shapes.map { Tensor.normal(shape: $0, rng: &rng) }
    let tracked = inputs.map { $0.trackingGradients() }
    let y0 = f(tracked)
    let w = Tensor.normal(shape: y0.shape, rng: &rng)
    let loss = (y0 * w).sum()
    let analytic = Tape.gradients(of: loss, wrt: tracked)

    func value(_ xs: [Tensor]) -> Double {
        Tape.withoutRecording {
            let y = f(xs)
            var acc = 0.0
            for i in 0..<y.count { acc += Double(y.storage[i]) * Double(w.storage[i]) }
            return acc
        }
    }
    for (k, x) in inputs.enumerated() {
        var numeric = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            var plus = inputs, minus = inputs
            plus[k].storage[i] += eps
            minus[k].storage[i] -= eps
            numeric[i] = Float((value(plus) - value(minus)) / Double(2 * eps))
        }
        assertClose(analytic[k].storage, numeric, atol: atol, rtol: rtol, "gradient of input \(k) \(x.shape)", file: file, line: line)
    }
}
