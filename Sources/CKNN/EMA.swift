// Exponential moving average of parameter values: the weights sampling usually uses.
import CKTensor
#if canImport(Glibc)
import Glibc
#endif

/// Shadow copies `ema` of a parameter list, updated as `ema <- decay * ema + (1 - decay) * w`
/// after each optimizer step and initialised to the current values. Checkpoint names: `ema.<param name>`.
public struct EMA {
    public let names: [String]
    /// Checkpoint key prefix: `ema` for the sampling weights; CTM's target network uses its own.
    public let prefix: String
    public var decay: Float
    /// The averaged values, one per parameter, in the order given.
    public private(set) var values: [Tensor]

    public init(parameters: [Parameter], decay: Float, prefix: String = "ema") {
        precondition((0...1).contains(decay), "EMA: decay \(decay) outside [0, 1]")
        names = parameters.map(\.name)
        self.prefix = prefix
        self.decay = decay
        values = parameters.map { $0.value.detached() }
    }

    /// The decay whose weight on a value halves every `steps` updates: 0.5^(1/steps).
    public static func decay(halfLife steps: Double) -> Float {
        precondition(steps > 0, "EMA.decay: half-life \(steps) must be positive")
        return Float(Glibc.pow(0.5, 1 / steps))
    }

    /// ema <- decay * ema + (1 - decay) * w for each parameter w; all parameters split over the threads once.
    public mutating func update(from parameters: [Parameter]) {
        check("update", parameters)
        let d = decay, a = 1 - decay
        let d8 = SIMD8<Float>(repeating: d), a8 = SIMD8<Float>(repeating: a)
        parameters.map(\.value).withValueBuffers { weights in
            values.withMutableValueBuffers { averages in
                Parallel.forEachSpan(averages.map(\.count)) { k, range in
                    guard !range.isEmpty else { return }     // an empty tensor inside a thread's span
                    let ep = averages[k].baseAddress!, wp = weights[k].baseAddress!
                    var j = range.lowerBound
                    while j + 8 <= range.upperBound {       // eight lanes at a time: e and w may not alias
                        let ej = UnsafeRawPointer(ep + j).loadUnaligned(as: SIMD8<Float>.self)
                        let wj = UnsafeRawPointer(wp + j).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(ep + j).storeBytes(of: d8 * ej + a8 * wj, as: SIMD8<Float>.self)
                        j += 8
                    }
                    while j < range.upperBound { ep[j] = d * ep[j] + a * wp[j]; j += 1 }
                }
            }
        }
    }

    /// Overwrites the parameters with the averaged values.
    public func copy(into parameters: [Parameter]) {
        check("copy", parameters)
        for (p, e) in zip(parameters, values) {
            e.storage.withUnsafeBufferPointer { src in p.update { dst in _ = dst.initialize(from: src) } }
        }
    }

    /// Exchanges the averaged values with the parameters' values. Call it twice to undo:
    /// `ema.swap(with: ps); sample(); ema.swap(with: ps)` samples with EMA weights and then resumes training.
    public mutating func swap(with parameters: [Parameter]) {
        check("swap", parameters)
        for i in parameters.indices {
            values[i].storage.withUnsafeMutableBufferPointer { e in
                parameters[i].update { p in
                    for j in p.indices { (p[j], e[j]) = (e[j], p[j]) }
                }
            }
        }
    }

    /// Runs `body` with the parameters holding the averaged values, restoring the trained values afterwards.
    public mutating func withAveragedValues<T>(in parameters: [Parameter], _ body: () throws -> T) rethrows -> T {
        swap(with: parameters)
        defer { swap(with: parameters) }
        return try body()
    }

    public var state: [(String, Tensor)] { zip(names, values).map { (join(prefix, $0), $1) } }

    /// Restores the averaged values saved by `state`.
    public mutating func loadState(from checkpoint: Checkpoint) throws {
        values = try zip(names, values).map { try checkpoint.requireTensor(join(prefix, $0), shape: $1.shape) }
    }

    private func check(_ op: String, _ parameters: [Parameter]) {
        precondition(parameters.count == values.count, "EMA.\(op): \(parameters.count) parameters, \(values.count) averaged")
        for (p, e) in zip(parameters, values) {
            precondition(p.shape == e.shape, "EMA.\(op): parameter \(p.name) \(p.shape) vs averaged \(e.shape)")
        }
    }
}
