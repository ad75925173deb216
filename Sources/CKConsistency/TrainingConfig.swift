// Everything that defines a run, stored as JSON in the checkpoint's metadata under "config". Closed
// choices are enums; an unknown value in a file is a clear error, never a fallback.
import Foundation
import CKTensor
import CKNN

public struct TrainingConfig: Sendable {
    public var method: MethodName = .ict
    public var model: ModelName = .mlpToy
    public var data = "toy:checkerboard"
    public var sampleShape = [2]
    public var iterations = 10_000
    public var batchSize = 128
    public var learningRate: Float = 3e-4
    /// The share of the run, at its end, over which the learning rate falls linearly to zero; nil: constant
    /// (every run before this setting existed).
    public var learningRateDecay: Double? = nil
    public var optimizer: OptimizerName = .adam
    /// nil: a half-life of 10% of the run (algorithms.md 1.7).
    public var emaDecay: Float? = nil
    public var seed: UInt64 = 0
    public var s0 = 10, s1 = 1280
    public var maxGradientNorm: Float? = nil
    public var immiscible: NoiseAssignment = .off
    /// Batch Styles Standardization band ratio; nil: off.
    public var bssRatio: Float? = nil
    /// Seconds of the wall-clock budget that planned `iterations`, if one did (the record of `--time`).
    public var timeBudget: Double? = nil
    /// The counts a `--time` run laid its schedules over before it re-planned (oldest first); empty for
    /// a run that kept its first count.
    public var replans: [Replan] = []
    /// The method's own settings (its `Options` type); stored under the method's name.
    public var options: any MethodOptions = NoOptions()
    /// A class-conditional run's classes (the labels index them); nil: unconditional.
    public var classNames: [String]? = nil
    /// The share of training labels replaced by "no class", so the model also samples unconditionally
    /// (and classifier-free guidance has its unconditional half).
    public var labelDropout: Float = 0.1

    public init() {}

    /// A config for `method` with its default options.
    public init(method: MethodName) {
        self.method = method
        options = method.type.defaultOptions
        s1 = method.type.defaultS1
    }

    /// The method's options as their type (defaults if the config holds another method's).
    public func options<O: MethodOptions>(as type: O.Type) -> O { options as? O ?? O() }

    /// The network this config trains, freshly initialised from `seed`.
    public func makeNetwork() -> any Backbone {
        var rng = SplitMix64(seed: seed)
        return model.make(sampleShape: sampleShape, conditionsOnTarget: method.type.networkTakesTarget,
                          classCount: classNames?.count ?? 0, rng: &rng)
    }

    /// A fresh network of the EDM model this run starts from or distills (ECT's start, CTM's teacher): the
    /// same network and classes, without a second time input.
    public func makeDiffusionNetwork() -> any Backbone {
        var edm = self
        edm.method = .edm
        return edm.makeNetwork()
    }

    /// The learning rate of iteration k (from 0): `learningRate` until the decay's share of the run is left,
    /// then a straight line that would reach zero one iteration after the last, so every decayed step moves.
    public func learningRate(atStep k: Int) -> Float {
        guard let share = learningRateDecay else { return learningRate }
        let decaySteps = max(1, Int((share * Double(iterations)).rounded()))
        let left = iterations - k
        guard left <= decaySteps else { return learningRate }
        return learningRate * Float(max(0, left)) / Float(decaySteps + 1)
    }

    /// The config iteration k trains under: `iterations` is the count its schedules (curriculum, stages,
    /// learning-rate decay, EMA half-life) were laid over at k, which a re-planned run changed on the way.
    public func scheduled(atStep k: Int) -> TrainingConfig {
        guard let earlier = replans.first(where: { k < $0.step }) else { return self }
        var config = self
        config.iterations = earlier.previousIterations
        return config
    }

    public var resolvedEMADecay: Float { emaDecay ?? EMA.decay(halfLife: max(1, 0.1 * Double(iterations))) }

    /// The batch transforms every method shares: style standardization, then noise assignment.
    public var generalBatchTransforms: BatchTransforms { BatchTransforms(bssRatio: bssRatio, assignment: immiscible) }

    /// Every setting in its range (a config read from a file may have been edited): a clear error naming
    /// the field, before anything is built from it.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ value: Any, _ requirement: String) throws {
            if !ok { throw TrainingError.invalidSetting(field: field, value: "\(value)", requirement: requirement) }
        }
        try check(iterations >= 1, "iterations", iterations, "must be at least 1")
        try check(batchSize >= 1 && batchSize <= 1 << 16, "batchSize", batchSize, "must be from 1 to 65536")
        try check(learningRate > 0 && learningRate.isFinite, "learningRate", learningRate, "must be a positive number")
        if let learningRateDecay {
            try check(learningRateDecay > 0 && learningRateDecay <= 1, "learningRateDecay", learningRateDecay, "must be in (0, 1]")
        }
        if let emaDecay { try check(emaDecay >= 0 && emaDecay < 1, "emaDecay", emaDecay, "must be in [0, 1)") }
        if let maxGradientNorm { try check(maxGradientNorm > 0 && maxGradientNorm.isFinite, "maxGradientNorm", maxGradientNorm, "must be a positive number") }
        if let bssRatio { try check(bssRatio > 0 && bssRatio <= 1, "bssRatio", bssRatio, "must be in (0, 1]") }
        if let timeBudget { try check(timeBudget > 0 && timeBudget.isFinite, "timeBudget", timeBudget, "must be a positive number of seconds") }
        var previousStep = 0
        for replan in replans {
            try check(replan.step > previousStep && replan.step < iterations, "replans", "\(replan.step):\(replan.previousIterations)",
                      "steps must rise and lie inside the run's \(iterations) iterations")
            try check(replan.previousIterations >= replan.step, "replans", "\(replan.step):\(replan.previousIterations)",
                      "a count must cover the iterations trained under it")
            previousStep = replan.step
        }
        try check(s0 >= 1 && s0 <= 1 << 20, "s0", s0, "must be from 1 to 2^20")
        try check(s1 >= s0 && s1 <= 1 << 20, "s1", s1, "must be at least s0 (\(s0)) and at most 2^20")
        try check(sampleShape.allSatisfy { $0 >= 1 }, "sampleShape", sampleShape, "must have positive sizes")
        if let classNames {
            try check((1...10_000).contains(classNames.count), "classNames", classNames.count, "must name from 1 to 10000 classes")
            try check(Set(classNames).count == classNames.count && !classNames.contains(""), "classNames", classNames,
                      "must be distinct, non-empty names")
        }
        try check(labelDropout >= 0 && labelDropout < 1, "labelDropout", labelDropout, "must be in [0, 1)")
        try options.validate()
    }

    /// Points or images: what the method's samples are once decoded.
    public var sampleKind: SampleKind { SampleKind(sampleShape: sampleShape) }
}

/// A change of a `--time` run's iteration count on the way: iterations before `step` (and after the
/// previous change) had their schedules laid over `previousIterations`.
public struct Replan: Sendable, Equatable, Codable {
    public var step: Int
    public var previousIterations: Int
    public init(step: Int, previousIterations: Int) { self.step = step; self.previousIterations = previousIterations }
}

extension TrainingConfig: Equatable {
    public static func == (a: TrainingConfig, b: TrainingConfig) -> Bool {
        a.method == b.method && a.model == b.model && a.data == b.data && a.sampleShape == b.sampleShape
            && a.iterations == b.iterations && a.batchSize == b.batchSize && a.learningRate == b.learningRate
            && a.learningRateDecay == b.learningRateDecay
            && a.optimizer == b.optimizer && a.emaDecay == b.emaDecay && a.seed == b.seed && a.s0 == b.s0 && a.s1 == b.s1
            && a.maxGradientNorm == b.maxGradientNorm && a.immiscible == b.immiscible && a.bssRatio == b.bssRatio
            && a.timeBudget == b.timeBudget && a.replans == b.replans && a.options.isEqual(to: b.options) && a.classNames == b.classNames
            && a.labelDropout == b.labelDropout
    }
}

extension MethodOptions {
    public func isEqual(to other: any MethodOptions) -> Bool { (other as? Self) == self }
}

extension TrainingMethod {
    public static var defaultOptions: any MethodOptions { Options() }
}

// MARK: - JSON

extension TrainingConfig: Codable {
    /// The general fields' keys, plus one key per method for its options.
    public struct CodingKeys: CodingKey {
        public let stringValue: String
        public init(stringValue: String) { self.stringValue = stringValue }
        public var intValue: Int? { nil }
        public init?(intValue: Int) { nil }
        static func method(_ name: MethodName) -> CodingKeys { CodingKeys(stringValue: name.rawValue) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func key(_ name: String) -> CodingKeys { CodingKeys(stringValue: name) }
        func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ type: T.Type, default value: T) throws -> T where T.RawValue == String {
            guard let raw = try c.decodeIfPresent(String.self, forKey: key(name)) else { return value }
            guard let v = T(rawValue: raw) else {
                throw TrainingError.unknownValue(field: name, value: raw, valid: T.allCases.map(\.rawValue))
            }
            return v
        }
        var d = TrainingConfig()
        d.method = try choice("method", MethodName.self, default: .ict)
        d.model = try choice("model", ModelName.self, default: .mlpToy)
        d.optimizer = try choice("optimizer", OptimizerName.self, default: .adam)
        d.immiscible = try choice("immiscible", NoiseAssignment.self, default: .off)
        d.data = try c.decodeIfPresent(String.self, forKey: key("data")) ?? d.data
        d.sampleShape = try c.decodeIfPresent([Int].self, forKey: key("sampleShape")) ?? d.sampleShape
        d.iterations = try c.decodeIfPresent(Int.self, forKey: key("iterations")) ?? d.iterations
        d.batchSize = try c.decodeIfPresent(Int.self, forKey: key("batchSize")) ?? d.batchSize
        d.learningRate = try c.decodeIfPresent(Float.self, forKey: key("learningRate")) ?? d.learningRate
        d.learningRateDecay = try c.decodeIfPresent(Double.self, forKey: key("learningRateDecay"))
        d.emaDecay = try c.decodeIfPresent(Float.self, forKey: key("emaDecay"))
        d.seed = try c.decodeIfPresent(UInt64.self, forKey: key("seed")) ?? d.seed
        d.s0 = try c.decodeIfPresent(Int.self, forKey: key("s0")) ?? d.s0
        d.s1 = try c.decodeIfPresent(Int.self, forKey: key("s1")) ?? d.s1
        d.maxGradientNorm = try c.decodeIfPresent(Float.self, forKey: key("maxGradientNorm"))
        d.bssRatio = try c.decodeIfPresent(Float.self, forKey: key("bssRatio"))
        d.timeBudget = try c.decodeIfPresent(Double.self, forKey: key("timeBudget"))
        d.replans = try c.decodeIfPresent([Replan].self, forKey: key("replans")) ?? []
        d.options = try d.method.type.decodeOptions(from: c)
        d.classNames = try c.decodeIfPresent([String].self, forKey: key("classNames"))
        d.labelDropout = try c.decodeIfPresent(Float.self, forKey: key("labelDropout")) ?? d.labelDropout
        self = d
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        func key(_ name: String) -> CodingKeys { CodingKeys(stringValue: name) }
        try c.encode(method.rawValue, forKey: key("method"))
        try c.encode(model.rawValue, forKey: key("model"))
        try c.encode(data, forKey: key("data"))
        try c.encode(sampleShape, forKey: key("sampleShape"))
        try c.encode(iterations, forKey: key("iterations"))
        try c.encode(batchSize, forKey: key("batchSize"))
        try c.encode(learningRate, forKey: key("learningRate"))
        try c.encode(optimizer.rawValue, forKey: key("optimizer"))
        try c.encodeIfPresent(learningRateDecay, forKey: key("learningRateDecay"))
        try c.encodeIfPresent(emaDecay, forKey: key("emaDecay"))
        try c.encode(seed, forKey: key("seed"))
        try c.encode(s0, forKey: key("s0"))
        try c.encode(s1, forKey: key("s1"))
        try c.encodeIfPresent(maxGradientNorm, forKey: key("maxGradientNorm"))
        try c.encode(immiscible.rawValue, forKey: key("immiscible"))
        try c.encodeIfPresent(bssRatio, forKey: key("bssRatio"))
        try c.encodeIfPresent(timeBudget, forKey: key("timeBudget"))
        // A run that kept its count writes what runs wrote before re-planning existed.
        if !replans.isEmpty { try c.encode(replans, forKey: key("replans")) }
        // Unconditional runs write exactly what they wrote before classes existed.
        if let classNames {
            try c.encode(classNames, forKey: key("classNames"))
            try c.encode(labelDropout, forKey: key("labelDropout"))
        }
        if !(options is NoOptions) { try options.encode(to: c.superEncoder(forKey: .method(method))) }
    }

    /// The config as stored in a checkpoint: JSON with sorted keys, so equal configs give equal bytes.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Reads the config stored in `checkpoint` (read from `path`).
    public static func stored(in checkpoint: Checkpoint, path: String) throws -> TrainingConfig {
        guard let json = checkpoint.metadata["config"] else { throw TrainingError.noTrainingConfig(path: path) }
        do {
            return try JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8))
        } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError.unreadableConfig(path: path, detail: "\(error)")
        }
    }
}

// MARK: - Lenient options

extension MethodOptions {
    /// Decodes the stored options over `storedDefaults`: keys a file lacks (settings added later) keep the
    /// values such files were trained with, so older checkpoints load and resume as they were.
    static func decodeOverDefaults(from decoder: Decoder) throws -> Self {
        let stored = try JSONValue(from: decoder)
        let defaults = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(Self.storedDefaults))
        return try JSONDecoder().decode(Self.self, from: JSONEncoder().encode(defaults.merging(stored)))
    }
}

/// A JSON value, for merging stored options over defaults.
enum JSONValue: Codable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    func merging(_ other: JSONValue) -> JSONValue {
        guard case .object(var mine) = self, case .object(let theirs) = other else { return other }
        for (k, v) in theirs { mine[k] = mine[k].map { $0.merging(v) } ?? v }
        return .object(mine)
    }
}
