// Fashion-MNIST: IDX files (gzip-compressed) from Debian's dataset-fashion-mnist, read through zlib.
import CKImageIO
import CKTensor
import CZlib
import Glibc

public struct DatasetError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The IDX format (LeCun): magic 0x00 0x00 type ndim, then ndim big-endian UInt32 sizes, then the data.
public enum IDX {
    /// Reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or not: (dims, values). The header's
    /// sizes are multiplied with overflow checks and compared with the data actually there; memory grows
    /// with the data read, never with what a header claims.
    public static func read(_ path: String) throws -> (dims: [Int], bytes: [UInt8]) {
        func fail(_ problem: String) -> DatasetError { DatasetError("IDX \(path): \(problem)") }
        let file = try GzipReader(path)
        defer { file.close() }
        let magic = try file.read(upTo: 4)
        guard magic.count == 4, magic[0] == 0, magic[1] == 0 else {
            throw fail(magic.isEmpty ? "the file is empty; download or reinstall it" : "not an IDX file (bad magic number)")
        }
        guard magic[2] == 0x08 else {
            throw fail("element type 0x\(String(magic[2], radix: 16)); only unsigned bytes (0x08) are supported")
        }
        let ndim = Int(magic[3])
        let sizes = try file.read(upTo: 4 * ndim)
        guard sizes.count == 4 * ndim else { throw fail("truncated header (\(ndim) sizes announced)") }
        var dims: [Int] = []
        for d in 0..<ndim {
            let o = 4 * d
            dims.append(Int(sizes[o]) << 24 | Int(sizes[o + 1]) << 16 | Int(sizes[o + 2]) << 8 | Int(sizes[o + 3]))
        }
        var need = 1
        for d in dims {
            let (p, overflow) = need.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("header says \(dims), more values than any file can hold; the file is corrupt") }
            need = p
        }
        let header = 4 + 4 * ndim
        if file.isPlain, file.size - header != need {       // uncompressed: the real size is known up front
            throw fail("header says \(dims) = \(need) values, the file holds \(file.size - header); it is truncated or corrupt")
        }
        let values = try file.read(upTo: need)
        guard values.count == need else {
            throw fail("header says \(dims) = \(need) values, the file holds \(values.count); it is truncated or corrupt")
        }
        guard try file.read(upTo: 1).isEmpty else {
            throw fail("header says \(dims) = \(need) values, the file holds more; it is corrupt")
        }
        return (dims, values)
    }
}

/// A regular file read through zlib (gzip-compressed or plain), opened without blocking on a FIFO.
final class GzipReader {
    let path: String, size: Int
    private var file: gzFile?

    init(_ path: String) throws {
        let fd: Int32
        do { (fd, size) = try RegularFile.open(path) } catch let problem as FileProblem {
            throw DatasetError("\(path): \(problem.reason); give the path of an IDX file (.gz or plain)")
        }
        guard let file = gzdopen(fd, "rb") else {
            Glibc.close(fd)
            throw DatasetError("\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        self.path = path
        self.file = file
    }

    /// True when the file is not gzip-compressed (valid once something was read).
    var isPlain: Bool { file.map { gzdirect($0) != 0 } ?? true }

    /// Up to `limit` bytes (fewer at the end of the data). The buffer grows by doubling as data arrives.
    func read(upTo limit: Int) throws -> [UInt8] {
        guard let file, limit > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: min(limit, 1 << 16)), used = 0
        while used < limit {
            if used == out.count { out += [UInt8](repeating: 0, count: min(out.count, limit - out.count)) }
            let chunk = UInt32(min(out.count - used, 1 << 30))
            let n = out.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + used, chunk) }
            if n < 0 {
                var code: Int32 = 0
                let reason = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
                throw DatasetError("\(path): cannot decompress: \(reason); the file is corrupt or truncated")
            }
            if n == 0 { break }
            used += Int(n)
        }
        out.removeSubrange(used...)
        return out
    }

    func close() {
        if let file { gzclose(file) }
        file = nil
    }
}

/// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60000 train / 10000 test images, 28x28 gray, 10 classes.
public enum FashionMNIST {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public enum Split: String, Sendable { case train, test }

    /// Images (N, 1, 28, 28) scaled to [-1, 1] (byte / 127.5 - 1) and labels 0...9.
    public static func load(_ split: Split = .train, directory: String = defaultDirectory) throws -> (images: Tensor, labels: [Int]) {
        var isDir = stat()
        guard stat(directory, &isDir) == 0, isDir.st_mode & S_IFMT == S_IFDIR else {
            throw DatasetError("Fashion-MNIST not found at \(directory): install the Debian package `dataset-fashion-mnist` "
                               + "(`apt-get install dataset-fashion-mnist`)")
        }
        let prefix = split == .train ? "train" : "t10k"
        let (dims, pixels) = try IDX.read(try locate(directory, "\(prefix)-images-idx3-ubyte"))
        let (ldims, labels) = try IDX.read(try locate(directory, "\(prefix)-labels-idx1-ubyte"))
        guard dims.count == 3, ldims.count == 1, dims[0] == ldims[0] else {
            throw DatasetError("Fashion-MNIST \(directory): images \(dims) do not match labels \(ldims); reinstall dataset-fashion-mnist")
        }
        let images = Tensor(shape: [dims[0], 1, dims[1], dims[2]]) { out in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<src.count { out[i] = Float(src[i]) / 127.5 - 1 }
            }
        }
        return (images, labels.map(Int.init))
    }

    /// The training or test split as an epoch-shuffled dataset.
    public static func dataset(_ split: Split = .train, directory: String = defaultDirectory) throws -> TensorDataset {
        let (images, labels) = try load(split, directory: directory)
        return TensorDataset(images, labels: labels, classNames: classNames)
    }

    private static func locate(_ directory: String, _ name: String) throws -> String {
        for candidate in ["\(directory)/\(name).gz", "\(directory)/\(name)"] where access(candidate, R_OK) == 0 {
            return candidate
        }
        throw DatasetError("Fashion-MNIST: \(directory)/\(name).gz is missing; reinstall the Debian package "
                           + "`dataset-fashion-mnist` (`apt-get install --reinstall dataset-fashion-mnist`)")
    }
}
