// Files and terminal output shared by the subcommands: sample pictures, CSV, progress lines.
import Foundation
import Glibc
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

/// Refuses outputs that would replace an input (the same file by path or inode), land on a folder, or
/// repeat each other: `sample --out C` must not overwrite checkpoint C.
func refuseOverwritingInputs(outputs: [(flag: String, path: String?)], inputs: [(flag: String, path: String?)]) throws {
    func identity(_ path: String) -> String {
        var info = stat()
        if stat(path, &info) == 0 { return "\(info.st_dev):\(info.st_ino)" }
        return URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
    let given = outputs.compactMap { o in o.path.map { (o.flag, $0) } }
    let sources = inputs.compactMap { i in i.path.map { (i.flag, $0) } }
    for (i, (flag, path)) in given.enumerated() {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CLIError("\(flag) \(path) is a folder; give a file name")
        }
        for (inputFlag, input) in sources where identity(path) == identity(input) {
            throw CLIError("\(flag) \(path) is the file given as \(inputFlag): writing it would destroy it; choose another name")
        }
        for (otherFlag, other) in given[..<i] where identity(path) == identity(other) {
            throw CLIError("\(flag) and \(otherFlag) name the same file \(path)")
        }
    }
}

/// Refuses a request whose result would not fit in memory, naming the size it would need.
func refuseAbsurdSize(count: Int, sampleShape: [Int], what: String, limitGiB: Double = 4) throws {
    let bytes = Double(count) * Double(sampleShape.reduce(1, *)) * 4
    guard bytes <= limitGiB * 1_073_741_824 else {
        throw CLIError(String(format: "%@: %d samples of %@ would need %.1f GiB; ask for at most %d", what, count,
                              sampleShape.map(String.init).joined(separator: "x"), bytes / 1_073_741_824,
                              Int(limitGiB * 1_073_741_824 / Double(sampleShape.reduce(1, *) * 4))))
    }
}
