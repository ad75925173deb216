// A folder of PNG images of one size and channel count, loaded as (N, C, H, W) in [-1, 1].
import CKImageIO
import CKTensor
import Glibc

public enum ImageFolder {
    /// Every `*.png` in `directory` (not recursive), in file-name order, as (N, C, H, W) in [-1, 1], values as
    /// stored (16-bit files keep their precision). Gray files give C = 1, colour and palette files C = 3 (alpha
    /// dropped). All files must agree in size and channels; a `.png` that is not a regular file is refused.
    public static func load(_ directory: String) throws -> (images: Tensor, files: [String]) {
        let names = try pngNames(in: directory)
        guard let first = names.first else {
            let subfolders = (try? subfolderNames(in: directory)) ?? []
            guard subfolders.isEmpty else {
                throw DatasetError("image folder \(directory): no .png files found, only subfolders (\(subfolders.prefix(4).joined(separator: ", ")))"
                                   + "; to train on them as classes add --classes, or give one subfolder as the folder")
            }
            throw DatasetError("image folder \(directory): no .png files found")
        }
        let reference = try PNG.read("\(directory)/\(first)")                 // (C, H, W), values as stored
        let shape = reference.shape
        var values = [Float](repeating: 0, count: names.count * reference.count)
        for (k, name) in names.enumerated() {
            let image = k == 0 ? reference : try PNG.read("\(directory)/\(name)")
            guard image.shape == shape else {
                throw DatasetError("image folder \(directory): \(name) is \(describe(image.shape)) but \(first) "
                                   + "(and the files before \(name)) are \(describe(shape)); "
                                   + "all images must have the same size and channel count")
            }
            values.replaceSubrange((k * image.count)..<((k + 1) * image.count), with: image.storage)
        }
        return (Tensor(shape: [names.count] + shape, storage: values), names)
    }

    /// The folder as an epoch-shuffled dataset.
    public static func dataset(_ directory: String) throws -> TensorDataset {
        TensorDataset(try load(directory).images)
    }

    private static func describe(_ shape: [Int]) -> String {       // (C, H, W)
        let (c, h, w) = (shape[0], shape[1], shape[2])
        return "\(w)x\(h) \(c == 1 ? "gray" : "RGB") (\(c) channel\(c == 1 ? "" : "s"))"
    }

    static func pngNames(in directory: String) throws -> [String] {
        try entryNames(in: directory).filter { $0.lowercased().hasSuffix(".png") }
    }

    /// The names in `directory`, hidden ones left out, sorted.
    static func entryNames(in directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            throw DatasetError("image folder \(directory): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }
}
