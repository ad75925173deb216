// Fashion-MNIST: IDX files (gzip-compressed) from Debian's dataset-fashion-mnist, read through zlib.
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
    /// Reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or not: (dims, values).
    public static func read(_ path: String) throws -> (dims: [Int], bytes: [UInt8]) {
        let data = try gunzip(path)
        guard data.count >= 4, data[0] == 0, data[1] == 0 else {
            throw DatasetError("IDX \(path): not an IDX file (bad magic number)")
        }
        guard data[2] == 0x08 else {
            throw DatasetError("IDX \(path): element type 0x\(String(data[2], radix: 16)); only unsigned bytes (0x08) are supported")
        }
        let ndim = Int(data[3])
        guard data.count >= 4 + 4 * ndim else { throw DatasetError("IDX \(path): truncated header") }
        var dims: [Int] = []
        for d in 0..<ndim {
            let o = 4 + 4 * d
            dims.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
        }
        let header = 4 + 4 * ndim, need = dims.reduce(1, *)
        guard data.count - header == need else {
            throw DatasetError("IDX \(path): header says \(dims) = \(need) values, file holds \(data.count - header)")
        }
        return (dims, Array(data.dropFirst(header)))
    }

    /// The whole decompressed content of a gzip file (a plain file is passed through by zlib).
    static func gunzip(_ path: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else {
            throw DatasetError("\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { gzclose(file) }
        var out = [UInt8](repeating: 0, count: 1 << 20), used = 0
        while true {
            if used == out.count { out += [UInt8](repeating: 0, count: out.count) }     // grow by doubling
            let n = out.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + used, UInt32($0.count - used)) }
            if n < 0 {
                var code: Int32 = 0
                let reason = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
                throw DatasetError("\(path): cannot decompress: \(reason)")
            }
            if n == 0 { break }
            used += Int(n)
        }
        out.removeSubrange(used...)
        return out
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
        return TensorDataset(images, labels: labels)
    }

    private static func locate(_ directory: String, _ name: String) throws -> String {
        for candidate in ["\(directory)/\(name).gz", "\(directory)/\(name)"] where access(candidate, R_OK) == 0 {
            return candidate
        }
        throw DatasetError("Fashion-MNIST: \(directory)/\(name).gz is missing; reinstall the Debian package "
                           + "`dataset-fashion-mnist` (`apt-get install --reinstall dataset-fashion-mnist`)")
    }
}
