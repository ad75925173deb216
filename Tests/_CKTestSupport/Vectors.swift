// Loads the independent test vectors in ../shared/vectors (computed from the papers' formulas). Every accessor
// throws a VectorError naming the file, the key and what was expected: a renamed or missing key must fail
// the test, never turn into NaN, [] or -1 that a loop or a NaN tolerance silently accepts.
import Foundation

public enum Vectors {
    /// The shared/vectors folder: $CK_VECTORS, else ../shared/vectors beside the repository.
    public static var directory: URL {
        if let env = ProcessInfo.processInfo.environment["CK_VECTORS"] { return URL(fileURLWithPath: env) }
        var url = URL(fileURLWithPath: #filePath)      // <repo>/Tests/_CKTestSupport/Vectors.swift
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent("shared/vectors")
    }

    public static func load(_ name: String) throws -> VectorRecord {
        let url = directory.appendingPathComponent(name)
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw VectorError(file: name, key: "", problem: "cannot read \(url.path) (\(error)); is CK_VECTORS right?")
        }
        return try parse(data, name: name)
    }

    /// The file's top-level object; `name` is only used in error messages.
    public static func parse(_ data: Data, name: String) throws -> VectorRecord {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw VectorError(file: name, key: "", problem: "is not a JSON object")
        }
        return VectorRecord(file: name, path: "", object: object)
    }
}

/// What is wrong in a vector file: where (file and key path) and what the test expected there.
public struct VectorError: Error, CustomStringConvertible, LocalizedError {
    public let file: String, key: String, problem: String
    public var description: String { key.isEmpty ? "\(file) \(problem)" : "\(file): '\(key)' \(problem)" }
    public var errorDescription: String? { description }
}

/// Arrays a test walks in step differ in length; `zip` would silently drop the tail.
public struct LengthMismatch: Error, CustomStringConvertible, LocalizedError {
    public let what: String, counts: [Int]
    public var description: String { "\(what): lengths \(counts.map(String.init).joined(separator: " vs ")) differ" }
    public var errorDescription: String? { description }
}

/// `zip` that throws unless both sides have the same length.
public func checkedZip<A: Collection, B: Collection>(_ a: A, _ b: B, _ what: String) throws -> Zip2Sequence<A, B> {
    try checkSameLength(what, a.count, b.count)
    return zip(a, b)
}

/// Throws unless all counts agree: a square matrix's sides, a shape's size against its values.
public func checkSameLength(_ what: String, _ counts: [Int]) throws {
    guard Set(counts).count <= 1 else { throw LengthMismatch(what: what, counts: counts) }
}

public func checkSameLength(_ what: String, _ counts: Int...) throws { try checkSameLength(what, counts) }

/// One JSON object of a vector file: the file itself or one of its cases. Lists must be non-empty (every list
/// in a vector file is a list of cases or values to check, and an empty one would test nothing).
public struct VectorRecord {
    public let file: String, path: String           // path locates this object in the file: "cases[1]"
    public let object: [String: Any]

    public func double(_ key: String) throws -> Double {
        guard let x = number(try value(key)) else { throw wrongType(key, "a number") }
        return x
    }

    public func int(_ key: String) throws -> Int {
        guard let x = integer(try value(key)) else { throw wrongType(key, "an integer") }
        return x
    }

    public func string(_ key: String) throws -> String {
        guard let x = try value(key) as? String else { throw wrongType(key, "a string") }
        return x
    }

    public func doubles(_ key: String) throws -> [Double] {
        try list(key, "a non-empty list of numbers", number)
    }

    public func ints(_ key: String) throws -> [Int] {
        try list(key, "a non-empty list of integers", integer)
    }

    /// A non-empty list of equally long, non-empty rows of numbers.
    public func matrix(_ key: String) throws -> [[Double]] {
        let rows = try list(key, "a non-empty list of non-empty lists of numbers") { row -> [Double]? in
            guard let items = row as? [Any], !items.isEmpty else { return nil }
            let xs = items.compactMap(number)
            return xs.count == items.count ? xs : nil
        }
        guard Set(rows.map(\.count)).count == 1 else {
            throw VectorError(file: file, key: located(key), problem: "has rows of lengths \(rows.map(\.count)); expected equal lengths")
        }
        return rows
    }

    public func dict(_ key: String) throws -> VectorRecord {
        guard let x = try value(key) as? [String: Any] else { throw wrongType(key, "an object") }
        return VectorRecord(file: file, path: located(key), object: x)
    }

    /// The cases of a family: a non-empty list of objects.
    public func dicts(_ key: String) throws -> [VectorRecord] {
        let objects = try list(key, "a non-empty list of objects") { $0 as? [String: Any] }
        return objects.enumerated().map { VectorRecord(file: file, path: "\(located(key))[\($0.offset)]", object: $0.element) }
    }

    /// Parallel columns of numbers (one case per index): throws unless all have the same length.
    public func columns(_ keys: [String]) throws -> [[Double]] {
        let columns = try keys.map(doubles)
        try checkSameLength("\(file): columns \(keys.map(located))", columns.map(\.count))
        return columns
    }

    // MARK: - Lookup and messages

    private func value(_ key: String) throws -> Any {
        guard let x = object[key] else {
            throw VectorError(file: file, key: located(key), problem: "is missing (keys here: \(object.keys.sorted()))")
        }
        return x
    }

    private func list<T>(_ key: String, _ expected: String, _ convert: (Any) -> T?) throws -> [T] {
        guard let items = try value(key) as? [Any], !items.isEmpty else { throw wrongType(key, expected) }
        let xs = items.compactMap(convert)
        guard xs.count == items.count else { throw wrongType(key, expected) }
        return xs
    }

    private func located(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func wrongType(_ key: String, _ expected: String) -> VectorError {
        VectorError(file: file, key: located(key), problem: "is \(describe(object[key] ?? NSNull())); expected \(expected)")
    }
}

// JSONSerialization yields NSNumber for numbers and booleans alike, and `is Bool` holds for the numbers 0 and 1
// too; booleans are told apart by their class. A boolean is not a number here.
private let booleanClass: AnyClass = type(of: NSNumber(value: true))

private func isBoolean(_ x: Any) -> Bool { (x as? NSNumber).map { type(of: $0) == booleanClass } ?? false }

private func number(_ x: Any) -> Double? {
    guard let n = x as? NSNumber, !isBoolean(n) else { return nil }
    return n.doubleValue
}

private func integer(_ x: Any) -> Int? {
    guard let d = number(x), d == d.rounded(), abs(d) < 0x1p53 else { return nil }
    return Int(d)
}

private func describe(_ x: Any) -> String {
    switch x {
    case is NSNull: return "null"
    case _ where isBoolean(x): return "a boolean"
    case let s as String: return "the string \"\(s.prefix(40))\""
    case let a as [Any]: return a.isEmpty ? "an empty list" : "a list of \(a.count)"
    case is [String: Any]: return "an object"
    case let n as NSNumber: return "the number \(n)"
    default: return "\(type(of: x))"
    }
}
