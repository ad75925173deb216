// Reading safetensors checkpoints: the whole structure validated before any tensor is built (sizes,
// offsets, dtypes, the data checksum), so a damaged or hostile file is an error naming what is wrong.
import Foundation
import CKTensor
import CZlib
import Glibc

// MARK: - Reading

extension Checkpoint {
    /// Reads and validates a safetensors file. Throws `CheckpointError` on anything malformed; never traps.
    public static func read(from url: URL) throws -> Checkpoint {
        let path = url.relativePath
        func error(_ kind: CheckpointError.Kind) -> CheckpointError { CheckpointError(path: path, kind: kind) }

        let data = try contents(of: url, path: path)
        guard data.count >= 8 else { throw error(.tooShort(bytes: data.count)) }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw error(.headerBeyondFile(headerLength: headerLength, fileLength: data.count))
        }
        guard headerLength <= 100_000_000 else {
            throw error(.badLayout(problem: "header length \(headerLength) is over the 100 MB that safetensors allows"))
        }
        let dataStart = 8 + Int(headerLength)
        let headerData = Data(data[8..<dataStart])
        guard headerData.first == UInt8(ascii: "{") else {
            throw error(.headerNotJSON(detail: "it does not start with '{'"))
        }
        let json: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
                throw error(.headerNotJSON(detail: "top level is not an object"))
            }
            json = object
        } catch let e as CheckpointError { throw e } catch {
            throw CheckpointError(path: path, kind: .headerNotJSON(detail: "\(error.localizedDescription)"))
        }

        var checkpoint = Checkpoint()
        checkpoint.source = url
        if let meta = json["__metadata__"] {
            guard let dict = meta as? [String: Any] else {
                throw error(.badLayout(problem: "__metadata__ is not an object of strings"))
            }
            for (k, v) in dict {
                guard let s = v as? String else {
                    throw error(.badLayout(problem: "__metadata__ entry '\(k)' is not a string"))
                }
                checkpoint.metadata[k] = s
            }
        }
        let storedChecksum = checkpoint.metadata.removeValue(forKey: checksumKey)
        if let storedChecksum {
            guard storedChecksum.hasPrefix("crc32:"), storedChecksum.count == 14,
                  UInt32(storedChecksum.dropFirst(6), radix: 16) != nil else {
                throw error(.badMetadata(key: checksumKey, value: storedChecksum, type: "checksum (crc32:<8 hex digits>)"))
            }
        }

        // Parse every entry, then check that the data regions tile the data section exactly.
        var entries: [(name: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in json where name != "__metadata__" {
            func bad(_ problem: String) -> CheckpointError { error(.badTensorEntry(tensor: name, problem: problem)) }
            guard let info = value as? [String: Any] else { throw bad("entry is not an object") }
            guard let dtype = info["dtype"] as? String else { throw bad("no dtype") }
            guard dtype == "F32" else { throw error(.unsupportedDType(tensor: name, dtype: dtype)) }
            guard let shapeList = info["shape"] as? [Any] else { throw bad("no shape list") }
            let shape = shapeList.compactMap(jsonInteger)
            guard shape.count == shapeList.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("shape \(shapeList) is not a list of non-negative integers")
            }
            guard let offsetList = info["data_offsets"] as? [Any], offsetList.count == 2,
                  let begin = jsonInteger(offsetList[0]), let end = jsonInteger(offsetList[1]) else {
                throw bad("data_offsets is not a pair of integers")
            }
            guard 0 <= begin, begin <= end else { throw bad("data_offsets [\(begin), \(end)] are reversed or negative") }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw bad("shape \(shape) is too large") }
                count = p
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
            guard !overflow, end - begin == bytes else {
                throw bad("shape \(shape) needs \(count) floats (\(count &* 4) bytes) but data_offsets [\(begin), \(end)] span \(end - begin) bytes")
            }
            entries.append((name, shape, begin, end))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        let dataLength = data.count - dataStart
        var expected = 0
        for e in entries {
            guard e.begin == expected else {
                throw error(.badLayout(problem: e.begin < expected
                    ? "tensor '\(e.name)' data [\(e.begin), \(e.end)] overlaps the previous tensor"
                    : "tensor '\(e.name)' data starts at \(e.begin), leaving a gap after byte \(expected)"))
            }
            guard e.end <= dataLength else {
                throw error(.badLayout(problem: "tensor '\(e.name)' data [\(e.begin), \(e.end)] runs past the \(dataLength) data bytes"))
            }
            expected = e.end
        }
        guard expected == dataLength else {
            throw error(.badLayout(problem: "tensors cover \(expected) data bytes but the file holds \(dataLength)"))
        }
        if let storedChecksum {
            let crc = data.withUnsafeBytes { crc32(UnsafeRawBufferPointer(rebasing: $0[dataStart...])) }
            let computed = checksumText(crc)
            guard computed == storedChecksum.lowercased() else { throw error(.checksumMismatch(stored: storedChecksum, computed: computed)) }
        }

        checkpoint.tensors.reserveCapacity(entries.count)
        for e in entries {
            let tensor = Tensor(shape: e.shape) { buffer in
                data.withUnsafeBytes { raw in
                    let src = UnsafeRawBufferPointer(rebasing: raw[(dataStart + e.begin)..<(dataStart + e.end)])
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: src)
                }
                #if _endian(big)
                for i in buffer.indices { buffer[i] = Float(bitPattern: UInt32(littleEndian: buffer[i].bitPattern)) }
                #endif
            }
            checkpoint.tensors.append((name: e.name, tensor: tensor))
        }
        return checkpoint
    }
}

extension Checkpoint {
    /// The whole file, refusing anything but a regular file. The type is checked on a descriptor opened with
    /// O_NONBLOCK, so a FIFO is reported instead of waited on.
    static func contents(of url: URL, path: String) throws -> [UInt8] {
        func error(_ kind: CheckpointError.Kind) -> CheckpointError { CheckpointError(path: path, kind: kind) }
        func reason() -> String { String(cString: strerror(errno)) }
        let fd = open(url.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw error(errno == ENOENT ? .fileMissing : .unreadable(reason: reason())) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw error(.unreadable(reason: reason())) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw error(.notAFile(what: "is a directory, not a file"))
        case S_IFIFO: throw error(.notAFile(what: "is a FIFO (named pipe), not a file"))
        case S_IFSOCK: throw error(.notAFile(what: "is a socket, not a file"))
        case S_IFCHR, S_IFBLK: throw error(.notAFile(what: "is a device, not a file"))
        default: throw error(.notAFile(what: "is not a regular file"))
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1), used = 0    // one spare byte to see a file that grew
        while true {
            if used == bytes.count { bytes += [UInt8](repeating: 0, count: max(bytes.count, 1 << 16)) }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + used, $0.count - used) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw error(.unreadable(reason: reason()))
            }
            if n == 0 { break }
            used += n
        }
        bytes.removeSubrange(used...)
        return bytes
    }
}

/// A JSON integer (not a boolean, not a fraction, within Int).
private func jsonInteger(_ value: Any) -> Int? {
    guard let number = value as? NSNumber else { return nil }
    let type = String(cString: number.objCType)
    guard !["c", "C", "B", "f", "d"].contains(type) else { return nil }   // bool or floating point
    return value as? Int
}
