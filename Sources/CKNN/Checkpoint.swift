// Checkpoints in the safetensors format: atomic, deterministic write with a data checksum; fully validated
// read; loading into parameters (finite values only).
import Foundation
import CKTensor
import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// Named float32 tensors plus string metadata, stored as safetensors
/// (https://github.com/huggingface/safetensors):
///
///     8 bytes   header length N, little-endian UInt64 (N is a multiple of 8: the header is space-padded)
///     N bytes   UTF-8 JSON {"__metadata__": {k: v}, "<name>": {"dtype": "F32", "shape": [...],
///                                                               "data_offsets": [begin, end]}, ...}
///     rest      raw little-endian float32 data; offsets are relative to its start and the
///               tensors lie back to back in the order they were written.
///
/// Training config, step counter and RNG state go in the metadata (see the typed accessors). The writer adds
/// `data_checksum` = "crc32:<8 hex digits>" (zlib's CRC-32 of the data section, `zlib.crc32` in Python), which
/// the reader checks and removes from `metadata`; files without it (older ones) load unchecked. The same
/// tensors and metadata always give the same bytes: metadata keys sorted, tensors in their given order.
public struct Checkpoint {
    public var tensors: [(name: String, tensor: Tensor)]
    public var metadata: [String: String]
    /// The file this checkpoint was read from, for error messages (nil when built in memory).
    public var source: URL?

    public init(tensors: [(name: String, tensor: Tensor)] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
        self.source = nil
    }

    /// The tensor stored under `name`, if any.
    public func tensor(named name: String) -> Tensor? {
        tensors.first { $0.name == name }?.tensor
    }

    /// Appends named tensors (parameter values, optimizer or EMA state).
    public mutating func append(_ named: [(String, Tensor)]) {
        for (name, tensor) in named { tensors.append((name: name, tensor: tensor.detached())) }
    }

    /// Appends the current values of `parameters` under `prefix + name`.
    public mutating func append(_ parameters: [Parameter], prefix: String = "") {
        for p in parameters { tensors.append((name: prefix + p.name, tensor: p.value.detached())) }
    }

    var displayPath: String { source?.relativePath ?? "(in memory)" }

    /// The metadata key of the data section's checksum.
    public static let checksumKey = "data_checksum"
}

// MARK: - Errors

/// Everything a user can get wrong about a checkpoint file. The message names the file,
/// the problem and what to do about it.
public struct CheckpointError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public enum Kind: Equatable {
        case fileMissing
        case notAFile(what: String)
        case unreadable(reason: String)
        case tooShort(bytes: Int)
        case headerBeyondFile(headerLength: UInt64, fileLength: Int)
        case headerNotJSON(detail: String)
        case unsupportedDType(tensor: String, dtype: String)
        case badTensorEntry(tensor: String, problem: String)
        case badLayout(problem: String)
        case checksumMismatch(stored: String, computed: String)
        case duplicateName(String)
        case missingTensor(name: String, hint: String)
        case shapeMismatch(name: String, expected: [Int], found: [Int])
        case nonFinite(name: String, count: Int, of: Int)
        case missingMetadata(key: String)
        case badMetadata(key: String, value: String, type: String)
        case writeFailed(reason: String)
    }

    public let path: String
    public let kind: Kind

    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    public var description: String {
        let problem: String
        switch kind {
        case .fileMissing:
            problem = "no such file; check the path (checkpoints are written as <out>/*.safetensors)"
        case let .notAFile(what):
            problem = "\(what); give the path of a .safetensors checkpoint file"
        case let .unreadable(reason):
            problem = "cannot be read (\(reason)); check its permissions"
        case let .tooShort(bytes):
            problem = "only \(bytes) bytes, too short for a safetensors header; the file is truncated or not a checkpoint"
        case let .headerBeyondFile(headerLength, fileLength):
            problem = "header length \(headerLength) runs past the end of the \(fileLength)-byte file; the file is truncated or not safetensors"
        case let .headerNotJSON(detail):
            problem = "header is not a JSON object (\(detail)); the file is corrupt or not safetensors"
        case let .unsupportedDType(tensor, dtype):
            problem = "tensor '\(tensor)' has dtype \(dtype), but only F32 is supported; convert it to float32 before loading"
        case let .badTensorEntry(tensor, detail):
            problem = "tensor '\(tensor)': \(detail); the file is corrupt"
        case let .badLayout(detail):
            problem = "\(detail); the file is corrupt or truncated"
        case let .checksumMismatch(stored, computed):
            problem = "the tensor data does not match its checksum (stored \(stored), computed \(computed)): the file is corrupt; "
                + "use another copy or an earlier checkpoint"
        case let .duplicateName(name):
            problem = "tensor name '\(name)' appears twice; every tensor needs its own name"
        case let .missingTensor(name, hint):
            problem = "no tensor '\(name)'; \(hint)"
        case let .shapeMismatch(name, expected, found):
            problem = "tensor '\(name)' has shape \(found) but the model expects \(expected); was it saved with the same model configuration?"
        case let .nonFinite(name, count, total):
            problem = "tensor '\(name)' has \(count) non-finite values (NaN or infinity) of \(total); the run diverged before "
                + "this checkpoint was written: resume from an earlier checkpoint"
        case let .missingMetadata(key):
            problem = "no metadata entry '\(key)'; was it written by this version of cmkit?"
        case let .badMetadata(key, value, type):
            problem = "metadata '\(key)' = '\(value)' is not a valid \(type); the file is corrupt or was edited by hand"
        case let .writeFailed(reason):
            problem = "could not be written (\(reason)); check that the directory exists and has free space"
        }
        return "checkpoint \(path): \(problem)"
    }

    public var errorDescription: String? { description }
}

// MARK: - Writing

extension Checkpoint {
    /// Writes the safetensors file to a temporary file in the same directory, flushes it, and renames
    /// it over `url`: a crash leaves either the old file or the new one, never a torn one. Temporary files
    /// of `url` that earlier writers left behind when they were killed are removed first.
    public func write(to url: URL) throws {
        let path = url.relativePath
        let bytes = try serialized(path: path)
        let dir = url.deletingLastPathComponent()
        var st = stat()
        if stat(url.path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
            throw CheckpointError(path: path, kind: .notAFile(what: "is a directory, not a file"))
        }
        Self.removeStaleTemporaryFiles(of: url)
        let tmp = dir.appendingPathComponent("\(Self.temporaryPrefix(of: url))\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        func fail(_ what: String) -> CheckpointError {
            CheckpointError(path: path, kind: .writeFailed(reason: "\(what): \(String(cString: strerror(errno)))"))
        }
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("create \(tmp.path)") }
        var renamed = false
        defer { if !renamed { unlink(tmp.path) } }
        do {
            defer { close(fd) }
            try bytes.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 { if errno == EINTR { continue }; throw fail("write") }
                    done += n
                }
            }
            guard fsync(fd) == 0 else { throw fail("fsync") }
        }
        guard rename(tmp.path, url.path) == 0 else { throw fail("rename onto \(url.path)") }
        renamed = true
        // Make the rename itself durable; failing here loses nothing already written.
        let dfd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Temporary files of `url` are named `.<name>.tmp-<pid>-<random>`.
    static func temporaryPrefix(of url: URL) -> String { ".\(url.lastPathComponent).tmp-" }

    /// Removes `.<name>.tmp-<pid>-*` files of `url` whose writing process no longer exists (killed during a
    /// save). Files of live processes (this one included), of other targets and unparsable names stay.
    static func removeStaleTemporaryFiles(of url: URL) {
        let dir = url.deletingLastPathComponent(), prefix = temporaryPrefix(of: url)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0, pid != getpid() else { continue }
            // kill(pid, 0) probes without signalling: ESRCH means no such process. EPERM means it exists.
            guard kill(pid, 0) != 0, errno == ESRCH else { continue }
            unlink(dir.appendingPathComponent(name).path)
        }
    }

    /// The complete file contents.
    func serialized(path: String) throws -> [UInt8] {
        var seen = Set<String>()
        var entries = ""
        var offset = 0
        var crc: UInt = 0
        for (name, tensor) in tensors {
            guard seen.insert(name).inserted, name != "__metadata__" else {
                throw CheckpointError(path: path, kind: .duplicateName(name))
            }
            let end = offset + 4 * tensor.count
            entries += ",\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],"
            entries += "\"data_offsets\":[\(offset),\(end)]}"
            offset = end
            #if _endian(little)                                      // the file's bytes, as written below
            crc = tensor.storage.withUnsafeBytes { Self.crc32($0, continuing: crc) }
            #else
            for v in tensor.storage { crc = withUnsafeBytes(of: v.bitPattern.littleEndian) { Self.crc32($0, continuing: crc) } }
            #endif
        }
        var meta = metadata
        meta[Self.checksumKey] = Self.checksumText(crc)
        // Sorted by UTF-8 bytes: the same order in every process and every Swift version.
        let metaText = meta.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            .map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
        var headerBytes = Array("{\"__metadata__\":{\(metaText)}\(entries)}".utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }   // spaces: safetensors aligns data to 8

        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for (_, tensor) in tensors {
            #if _endian(little)
            tensor.storage.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
            for v in tensor.storage { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            #endif
        }
        return out
    }

    /// zlib's CRC-32 (Python's `zlib.crc32`) of `bytes`, continuing from `crc` (0 to start).
    static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt = 0) -> UInt {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return crc32_z(crc, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    }

    static func checksumText(_ crc: UInt) -> String {
        let hex = String(crc & 0xFFFF_FFFF, radix: 16)
        return "crc32:" + String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped; other UTF-8 kept.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

// MARK: - Loading into parameters

extension Checkpoint {
    /// Assigns every parameter from the tensor named `prefix + parameter.name`. Nothing is assigned unless
    /// all of them are present with the right shapes; the error names the first one that is not.
    /// `model` names the architecture the caller expects, for the error message.
    public func load(into parameters: [Parameter], prefix: String = "", model: String? = nil) throws {
        let index = Dictionary(tensors.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        var sources: [Int] = []
        sources.reserveCapacity(parameters.count)
        for p in parameters {
            let name = prefix + p.name
            guard let k = index[name] else {
                var hint = model.map { "was it saved from \($0)?" } ?? "was it saved from the same model?"
                if let saved = metadata["model"], saved != model { hint += " (its metadata says model '\(saved)')" }
                throw CheckpointError(path: displayPath, kind: .missingTensor(name: name, hint: hint))
            }
            guard tensors[k].tensor.shape == p.shape else {
                throw CheckpointError(path: displayPath, kind: .shapeMismatch(name: name, expected: p.shape, found: tensors[k].tensor.shape))
            }
            try requireFinite(tensors[k].tensor, name: name)
            sources.append(k)
        }
        for (p, k) in zip(parameters, sources) {
            tensors[k].tensor.storage.withUnsafeBufferPointer { src in
                p.update { dst in _ = dst.initialize(from: src) }
            }
        }
    }

    /// The tensor `name` with shape `shape`, or an error naming what is wrong (for optimizer and EMA state).
    public func requireTensor(_ name: String, shape: [Int]) throws -> Tensor {
        guard let t = tensor(named: name) else {
            throw CheckpointError(path: displayPath, kind: .missingTensor(name: name, hint: "was it saved with the same training setup?"))
        }
        guard t.shape == shape else {
            throw CheckpointError(path: displayPath, kind: .shapeMismatch(name: name, expected: shape, found: t.shape))
        }
        try requireFinite(t, name: name)
        return t
    }

    /// Throws `.nonFinite` if any value of `t` is NaN or infinite.
    func requireFinite(_ t: Tensor, name: String) throws {
        let bad = t.storage.withUnsafeBufferPointer { values in
            var n = 0
            for v in values where !v.isFinite { n += 1 }
            return n
        }
        if bad > 0 { throw CheckpointError(path: displayPath, kind: .nonFinite(name: name, count: bad, of: t.count)) }
    }
}

// MARK: - Typed metadata

extension Checkpoint {
    /// Stores any value whose `description` round-trips (Int, UInt64, Double, Float, Bool, String).
    public mutating func setMetadata<T: LosslessStringConvertible>(_ key: String, _ value: T) {
        metadata[key] = value.description
    }

    /// Reads a typed metadata value; throws when missing or unparsable.
    public func metadataValue<T: LosslessStringConvertible>(_ key: String, as type: T.Type = T.self) throws -> T {
        guard let s = metadata[key] else { throw CheckpointError(path: displayPath, kind: .missingMetadata(key: key)) }
        guard let v = T(s) else {
            throw CheckpointError(path: displayPath, kind: .badMetadata(key: key, value: s, type: "\(T.self)"))
        }
        return v
    }

    public func intMetadata(_ key: String) throws -> Int { try metadataValue(key) }
    public func doubleMetadata(_ key: String) throws -> Double { try metadataValue(key) }
    public func uint64Metadata(_ key: String) throws -> UInt64 { try metadataValue(key) }

    /// Saves a generator's whole state (one UInt64) so a resumed run draws the same numbers.
    public mutating func setRNG(_ rng: SplitMix64, key: String = "rng.state") {
        setMetadata(key, rng.state)
    }

    public func rng(key: String = "rng.state") throws -> SplitMix64 {
        SplitMix64(seed: try uint64Metadata(key))
    }
}
