// --class and --guidance for `sample` and `compare`: which class of a class-conditional model to draw.
import ArgumentParser
import CKConsistency

struct ClassOptions: ParsableArguments {
    @Option(name: .customLong("class"),
            help: "Class-conditional models: a class by index, name or the start of a name (e.g. 7, sneaker), all (one row per class, the same noise down each column), or none (the no-class samples). Default: every class in turn, as a model of the whole data set draws.")
    var className: String?
    @Option(parsing: .unconditional, help: "Classifier-free guidance weight w for EDM's Heun sampler, with --class (1: none; larger: more typical of the class).")
    var guidance: Float?

    func validate() throws {
        if let guidance {
            guard let className, className.lowercased() != "none" else { throw ValidationError("--guidance needs --class: it pushes samples towards a class.") }
            guard guidance >= 0 && guidance.isFinite else { throw ValidationError("--guidance must be a number of at least 0 (1: no guidance).") }
        }
    }

    /// What was asked of `model`: nothing (unconditional, or `none`), one class, every class in rows, or, for a
    /// class-conditional model without --class, every class in turn.
    func choice(for model: TrainedModel) throws -> ClassChoice? {
        guard let className else { return model.classNames.map { .inTurn($0) } }
        if className.lowercased() == "none" { return nil }
        guard let names = model.classNames else { throw CLIError("\(ClassError.notConditional(path: model.source ?? "the checkpoint"))") }
        if className.lowercased() == "all" { return .all(names) }
        do { return .one(try model.classLabel(className), names) } catch let e as ClassError { throw CLIError("--class: \(e)") }
    }
}

enum ClassChoice {
    case one(Int, [String])
    /// Every class, a row each in a picture.
    case all([String])
    /// Every class in turn, sample k of class k mod K: the default for a class-conditional model.
    case inTurn([String])

    var names: [String] {
        switch self { case .one(_, let n), .all(let n), .inTurn(let n): return n }
    }

    /// Labels for `count` samples: the one class, or the classes in turn (sample k is class k mod K).
    func labels(count: Int) -> [Int] {
        switch self {
        case .one(let label, _): return Array(repeating: label, count: count)
        case .all(let names), .inTurn(let names): return (0..<count).map { $0 % names.count }
        }
    }

    var description: String {
        switch self {
        case .one(let label, let names): return "class \(label) (\(names[label]))"
        case .all(let names): return "all \(names.count) classes"
        case .inTurn(let names): return "all \(names.count) classes in turn"
        }
    }
}

extension ClassChoice {
    /// For picture titles: "SNEAKER", "ALL CLASSES".
    var title: String {
        switch self {
        case .one(let label, let names): return names[label].uppercased()
        case .all, .inTurn: return "ALL CLASSES"
        }
    }
}

/// 2 rather than 2.0 in titles.
func formatted(_ w: Float) -> String { w == w.rounded() ? String(Int(w)) : String(w) }
