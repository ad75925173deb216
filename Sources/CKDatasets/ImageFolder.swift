// A folder of PNG images of one size and channel count, loaded as (N, C, H, W) in [-1, 1].
import CKImageIO
import CKTensor
import Glibc

public enum ImageFolder {
    /// Every `*.png` in `directory` (not recursive), in file-name order, as (N, C, H, W) in [-1, 1].
    /// Gray files give C = 1, colour files C = 3 (alpha dropped). All files must agree in size and channels.
    public static func load(_ directory: String) throws -> (images: Tensor, files: [String]) {
        let names = try pngNames(in: directory)
        guard let first = names.first else {
            throw DatasetError("image folder \(directory): no .png files found")
        }
        let reference = try PNG.readBitmap("\(directory)/\(first)")
        let (c, h, w) = (reference.channels, reference.height, reference.width)
        var values = [Float](repeating: 0, count: names.count * c * h * w)
        for (k, name) in names.enumerated() {
            let image = k == 0 ? reference : try PNG.readBitmap("\(directory)/\(name)")
            guard image.channels == c, image.height == h, image.width == w else {
                throw DatasetError("image folder \(directory): \(name) is \(describe(image)) but \(first) "
                                   + "(and the files before \(name)) are \(describe(reference)); "
                                   + "all images must have the same size and channel count")
            }
            let t = image.tensor().storage
            values.replaceSubrange((k * t.count)..<((k + 1) * t.count), with: t)
        }
        return (Tensor(shape: [names.count, c, h, w], storage: values), names)
    }

    /// The folder as an epoch-shuffled dataset.
    public static func dataset(_ directory: String) throws -> TensorDataset {
        TensorDataset(try load(directory).images)
    }

    private static func describe(_ b: Bitmap) -> String {
        "\(b.width)x\(b.height) \(b.channels == 1 ? "gray" : "RGB") (\(b.channels) channel\(b.channels == 1 ? "" : "s"))"
    }

    static func pngNames(in directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            throw DatasetError("image folder \(directory): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.lowercased().hasSuffix(".png") && !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }
}
