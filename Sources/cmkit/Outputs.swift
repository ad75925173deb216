// Files and terminal output shared by the subcommands: sample pictures, CSV, progress lines.
import Foundation
import CKTensor
import CKImageIO

/// Progress and notes go to standard error so that standard output stays machine-readable.
func note(_ message: String) {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
}

/// One "x,y" line per point, no header (as the PyTorch port writes its samples).
func writePointsCSV(_ points: Tensor, to path: String) throws {
    var text = ""
    for i in 0..<points.shape[0] {
        text += String(format: "%.6f,%.6f\n", points.storage[2 * i], points.storage[2 * i + 1])
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Parses "1,2,4" style lists; the error names the option.
func parseList<T: LosslessStringConvertible>(_ text: String, option: String) throws -> [T] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let values = parts.compactMap { T($0) }
    guard !parts.isEmpty, values.count == parts.count else {
        throw CLIError("\(option) '\(text)' is not a comma-separated list of numbers (e.g. 1,2,4)")
    }
    return values
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The rows of FOLDER/FILE as fields (a plain comma-separated file without quoting, as `cmkit` writes);
/// `hint` says how to produce the file when it is missing.
func readCSV(folder: String, file: String, hint: String) throws -> (path: String, rows: [[String]]) {
    let path = URL(fileURLWithPath: folder).appendingPathComponent(file).path
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("\(path) not found: \(hint)") }
    return (path, text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) })
}
