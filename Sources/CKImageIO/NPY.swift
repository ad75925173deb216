// NumPy .npy (format 1.0/2.0/3.0) files: float32 arrays written so raw samples open with numpy.load, and
// read back (float32, float64 or uint8, C order) so other tools' samples can be scored.
import Foundation
import CKTensor
import Glibc

public struct NPYError: Error, CustomStringConvertible, Equatable {
    public let path: String, message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "NPY \(path): \(message)" }
}

public enum NPY {
    /// Writes `tensor` as a little-endian float32 C-order array of the tensor's shape.
    public static func write(_ tensor: Tensor, to path: String) throws {
        let dims = tensor.shape.map(String.init).joined(separator: ", ") + (tensor.rank == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        // magic (6) + version (2) + length (2) + header + newline: a multiple of 64 bytes
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        for v in tensor.storage { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        // Atomic (a temporary file renamed over the target): an interrupted write never leaves half an array.
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw NPYError(path: path, message: "cannot write: \((error as NSError).localizedDescription); check the folder exists and has space")
        }
    }

    /// The element types `read` understands.
    public enum ElementType: String, Sendable {
        case float32 = "<f4", float64 = "<f8", uint8 = "|u1"
        var size: Int { switch self { case .float32: return 4; case .float64: return 8; case .uint8: return 1 } }
    }

    /// An array as stored: its shape, element type and values as Float (uint8 as 0...255).
    public static func read(_ path: String) throws -> (tensor: Tensor, type: ElementType) {
        func fail(_ message: String) -> NPYError { NPYError(path: path, message: message) }
        let bytes: [UInt8]
        do { bytes = try RegularFile.contents(path) } catch let problem as FileProblem {
            throw fail("\(problem.reason); give the path of a .npy file")
        }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let (lengthBytes, start): (Int, Int) = major == 1 ? (2, 8) : (4, 8)
        guard major >= 1 && major <= 3, bytes.count >= start + lengthBytes else { throw fail("unsupported .npy version \(major)") }
        var headerLength = 0
        for k in 0..<lengthBytes { headerLength |= Int(bytes[start + k]) << (8 * k) }
        let dataStart = start + lengthBytes + headerLength
        guard dataStart <= bytes.count else { throw fail("header runs past the end of the file") }
        let header = String(decoding: bytes[(start + lengthBytes)..<dataStart], as: UTF8.self)
        guard let descr = field("descr", in: header).map({ $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")) }) else {
            throw fail("header has no 'descr'")
        }
        let type: ElementType
        switch descr {
        case "<f4": type = .float32
        case "<f8": type = .float64
        case "|u1", "<u1", "u1": type = .uint8
        default: throw fail("element type \(descr) is not supported; save float32, float64 or uint8 arrays")
        }
        guard field("fortran_order", in: header)?.trimmingCharacters(in: .whitespaces) == "False" else {
            throw fail("Fortran-order arrays are not supported; save with numpy's default C order")
        }
        guard let shapeText = field("shape", in: header) else { throw fail("header has no 'shape'") }
        let parts = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = parts.compactMap { Int($0) }
        guard shape.count == parts.count, shape.allSatisfy({ $0 >= 0 }) else { throw fail("shape \(shapeText) is not a tuple of sizes") }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(shape) is too large") }
            count = product
        }
        let expected = count.multipliedReportingOverflow(by: type.size)
        guard !expected.overflow, bytes.count - dataStart == expected.partialValue else {
            throw fail("shape \(shape) of \(type.rawValue) needs \(expected.partialValue) data bytes, the file has \(bytes.count - dataStart)")
        }
        let values: [Float] = bytes.withUnsafeBufferPointer { buf in
            let base = UnsafeRawPointer(buf.baseAddress! + dataStart)
            switch type {
            case .float32: return (0..<count).map { Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case .float64: return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case .uint8: return (0..<count).map { Float(base.load(fromByteOffset: $0, as: UInt8.self)) }
            }
        }
        return (Tensor(shape: shape, storage: values), type)
    }

    /// The text of `'key': value` in a header dict (up to the next top-level comma).
    private static func field(_ key: String, in header: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        var depth = 0, end = header.endIndex
        for i in header[range.upperBound...].indices {
            let ch = header[i]
            if ch == "(" { depth += 1 } else if ch == ")" { depth -= 1 } else if (ch == "," || ch == "}") && depth == 0 { end = i; break }
        }
        return String(header[range.upperBound..<end]).trimmingCharacters(in: .whitespaces)
    }
}
