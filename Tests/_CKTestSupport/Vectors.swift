// Loads the independent test vectors in ../shared/vectors (computed from the papers' formulas).
import Foundation

public enum Vectors {
    /// The shared/vectors folder: $CK_VECTORS, else ../shared/vectors beside the repository.
    public static var directory: URL {
        if let env = ProcessInfo.processInfo.environment["CK_VECTORS"] { return URL(fileURLWithPath: env) }
        var url = URL(fileURLWithPath: #filePath)      // <repo>/Tests/_CKTestSupport/Vectors.swift
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent("shared/vectors")
    }

    public static func load(_ name: String) throws -> [String: Any] {
        let url = directory.appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NSError(domain: "Vectors", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(url.path) is not a JSON object"])
        }
        return object
    }
}

extension Dictionary where Key == String, Value == Any {
    public func doubles(_ key: String) -> [Double] { (self[key] as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.doubleValue } }
    public func double(_ key: String) -> Double { (self[key] as? NSNumber)?.doubleValue ?? .nan }
    public func int(_ key: String) -> Int { (self[key] as? NSNumber)?.intValue ?? -1 }
    public func dict(_ key: String) -> [String: Any] { self[key] as? [String: Any] ?? [:] }
    public func dicts(_ key: String) -> [[String: Any]] { self[key] as? [[String: Any]] ?? [] }
}
