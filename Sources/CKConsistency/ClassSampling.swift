// What sampling a class-conditional model adds: naming a class, binding it to the network, guidance;
// and the checks that a method's input network (a teacher, a pretrained model) fits the run.
import CKTensor
import CKNN

/// Asking a class-conditional model for one class, optionally with classifier-free guidance.
public struct ClassRequest: Sendable, Equatable {
    public var label: Int
    /// w in D = D(x, null) + w (D(x, c) - D(x, null)); 1: the conditional model as trained.
    public var guidance: Float

    public init(label: Int, guidance: Float = 1) {
        self.label = label
        self.guidance = guidance
    }
}

public enum ClassError: Error, CustomStringConvertible, Equatable {
    case notConditional(path: String)
    case unknownClass(String, names: [String])
    case ambiguousClass(String, matches: [String])
    case guidanceNeedsHeun(sampler: String)
    case badGuidance(Float)

    public var description: String {
        switch self {
        case let .notConditional(path):
            return "\(path) is not class-conditional: it was trained without --classes, so it samples no particular class; "
                + "train with --classes on labelled data (fashion-mnist, shapes, folder:PATH with class subfolders)"
        case let .unknownClass(text, names):
            return "no class '\(text)': use an index from 0 to \(names.count - 1), a name (\(names.joined(separator: ", "))) or all"
        case let .ambiguousClass(text, matches):
            return "class '\(text)' matches \(matches.joined(separator: ", ")): give more of the name or the index"
        case let .guidanceNeedsHeun(sampler):
            return "--guidance applies to EDM's Heun sampler, not to \(sampler) sampling: mixing the conditional and unconditional "
                + "outputs of a one-jump consistency function is not the guided ODE's solution. Sample the class without guidance"
        case let .badGuidance(w):
            return "--guidance \(w) must be a finite number of at least 0 (1: no guidance; 2-4 is usual)"
        }
    }
}

extension TrainedModel {
    /// The classes of a class-conditional model; nil for an unconditional one.
    public var classNames: [String]? { config.classNames }

    /// A class by index ("7"), by name, case-insensitively, or by the start of one name ("sneak").
    public func classLabel(_ text: String) throws -> Int {
        guard let names = classNames else { throw ClassError.notConditional(path: source ?? "the model") }
        if let index = Int(text) {
            guard names.indices.contains(index) else { throw ClassError.unknownClass(text, names: names) }
            return index
        }
        let wanted = text.lowercased()
        if let exact = names.firstIndex(where: { $0.lowercased() == wanted }) { return exact }
        let matches = names.indices.filter { names[$0].lowercased().hasPrefix(wanted) }
        guard !matches.isEmpty, !wanted.isEmpty else { throw ClassError.unknownClass(text, names: names) }
        guard matches.count == 1 else { throw ClassError.ambiguousClass(text, matches: matches.map { names[$0] }) }
        return matches[0]
    }

    /// Samples of one class (or, with `request` nil, unconditional samples: a conditional model then sees "no class").
    /// Sample k's noise is the same for every class, so a class changes the picture, not the draw.
    public func sample(_ plan: SamplingPlan, count: Int, seed: UInt64, class request: ClassRequest?) throws -> Tensor {
        guard let request else { return try sample(plan, count: count, seed: seed) }
        guard let names = classNames else { throw ClassError.notConditional(path: source ?? "the model") }
        guard names.indices.contains(request.label) else { throw ClassError.unknownClass(String(request.label), names: names) }
        guard request.guidance >= 0, request.guidance.isFinite else { throw ClassError.badGuidance(request.guidance) }
        if request.guidance != 1 && plan.kind != .heun { throw ClassError.guidanceNeedsHeun(sampler: plan.kind.rawValue) }
        let bound = LabelledNetwork(network, labels: .every(request.label), guidance: request.guidance)
        return try plan.sample(network: bound, count: count, seed: seed, context: context)
    }

    /// Samples with a class per row. Row k is the j-th sample of its class (j: its rank among that class's
    /// rows) and gets the noise `sample(_:count:seed:class:)` gives sample j: classes side by side share their noise.
    public func sample(_ plan: SamplingPlan, labels: [Int], seed: UInt64, guidance: Float = 1) throws -> Tensor {
        guard !labels.isEmpty else { throw SamplingError.badCount(0) }
        var rows: [Int: [Int]] = [:]
        for (k, label) in labels.enumerated() { rows[label, default: []].append(k) }
        let per = outputShape.reduce(1, *)
        var values = [Float](repeating: 0, count: labels.count * per)
        for (label, indices) in rows.sorted(by: { $0.key < $1.key }) {
            let part = try sample(plan, count: indices.count, seed: seed, class: ClassRequest(label: label, guidance: guidance))
            for (j, k) in indices.enumerated() {
                values.replaceSubrange((k * per)..<((k + 1) * per), with: part.storage[(j * per)..<((j + 1) * per)])
            }
        }
        return Tensor(shape: [labels.count] + outputShape, storage: values)
    }

    /// Throws unless this is an EDM model of the run's network, sample shape and classes (ECT's start, CTM's teacher).
    public func requireDiffusionModel(for run: TrainingConfig, source: String) throws {
        guard config.method == .edm else {
            throw TrainingError.inputHasWrongMethod(path: source, found: config.method, expected: .edm)
        }
        guard config.model == run.model, config.sampleShape == run.sampleShape else {
            throw TrainingError.inputDoesNotMatch(path: source, model: config.model, sampleShape: config.sampleShape,
                                                  runModel: run.model, runSampleShape: run.sampleShape)
        }
        guard config.classNames == run.classNames else {
            throw TrainingError.classesDoNotMatch(path: source, input: config.classNames, run: run.classNames)
        }
    }
}
