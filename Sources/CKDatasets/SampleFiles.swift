// Samples that any tool made, read back for scoring: an .npy array, a PNG grid (the layout `cmkit sample`
// and the PyTorch port write), a folder of PNG images, or a CSV of points. Checked against the shape of
// one sample of the data set they are scored against.
import Foundation
import CKTensor
import CKImageIO

public enum SampleFiles {
    /// `path` as (N, sampleShape...) in the data's value range ([-1, 1] for images). `sampleShape` is the
    /// data set's: [C, H, W] for images, [d] for points. Errors say what is wrong with the file.
    public static func read(_ path: String, sampleShape: [Int]) throws -> Tensor {
        let samples: Tensor
        if try isFolder(path) {
            samples = try ImageFolder.load(path).images
        } else {
            switch URL(fileURLWithPath: path).pathExtension.lowercased() {
            case "npy": samples = try array(path, sampleShape: sampleShape)
            case "png": samples = try grid(path, sampleShape: sampleShape)
            case "csv": samples = try points(path)
            default: throw DatasetError("\(path): give an .npy array, a .png grid, a .csv of points or a folder of .png images")
            }
        }
        return try checked(matchingChannels(samples, sampleShape), sampleShape: sampleShape, path: path)
    }

    /// Whether `path` is a folder (else a file); a missing path is an error naming it.
    private static func isFolder(_ path: String) throws -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError("\(path): no such file or folder")
        }
        return isDirectory.boolValue
    }

    /// Images to edit as (N, C, H, W): one .png (one image, not a grid), a folder of .png images, or an .npy array
    /// ((N, C, H, W), or (N, H, W) for gray; floats in [-1, 1] or uint8 pixels). RGB pictures of gray images come back
    /// gray when `channels` is 1. The size is not checked here (the edit names what it needs).
    public static func images(_ path: String, channels: Int) throws -> Tensor {
        let images: Tensor
        if try isFolder(path) {
            images = try ImageFolder.load(path).images
        } else {
            switch URL(fileURLWithPath: path).pathExtension.lowercased() {
            case "png":
                let image = try PNG.read(path)
                images = image.reshaped([1] + image.shape)
            case "npy": images = try array(path, sampleShape: [1, 0, 0])       // (N, H, W) becomes (N, 1, H, W)
            default: throw DatasetError("\(path): give a .png image, a folder of .png images or an .npy array (N, C, H, W)")
            }
        }
        guard images.rank == 4, images.shape[0] >= 1 else {
            throw DatasetError("\(path): an array of shape \(images.shape) is not a batch of images (N, C, H, W)")
        }
        let bad = images.storage.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        guard bad == 0 else { throw DatasetError("\(path): \(bad) of \(images.count) values are NaN or infinite") }
        return matchingChannels(images, [channels, images.shape[2], images.shape[3]])
    }

    /// A mask picture as (C, H, W) of pixel / 255: 1 where white, 0 where black, other values where gray; an RGB
    /// picture with equal channels comes back as one channel.
    public static func mask(_ path: String) throws -> Tensor {
        let bitmap = try PNG.readBitmap(path)
        let values = Tensor(shape: [1, bitmap.height, bitmap.width, bitmap.channels], storage: bitmap.pixels.map { Float($0) / 255 })
            .permuted([0, 3, 1, 2])
        return matchingChannels(values, [1, bitmap.height, bitmap.width]).reshaped([-1, bitmap.height, bitmap.width])
    }

    /// float arrays as they are; uint8 arrays as pixels 0...255. (N, H, W) is taken as gray (N, 1, H, W).
    static func array(_ path: String, sampleShape: [Int]) throws -> Tensor {
        let (raw, type) = try NPY.read(path)
        var t = type == .uint8 ? Tensor(shape: raw.shape, storage: raw.storage.map { $0 / 127.5 - 1 }) : raw
        if t.rank == 3 && sampleShape.count == 3 && sampleShape[0] == 1 { t = t.reshaped([t.shape[0], 1, t.shape[1], t.shape[2]]) }
        return t
    }

    /// A grid of tiles of the data's size with equal padding between and around them (the narrowest padding
    /// that fits and is one colour; no padding last); trailing tiles of the last row that are all padding (a
    /// partly filled grid) are dropped.
    static func grid(_ path: String, sampleShape: [Int]) throws -> Tensor {
        guard sampleShape.count == 3 else { throw DatasetError("\(path): a PNG grid holds images, but the data set has points") }
        let bitmap = try PNG.readBitmap(path)
        let (h, w) = (sampleShape[1], sampleShape[2])
        guard let layout = (Array(1...16) + [0]).lazy.compactMap({ p -> (p: Int, rows: Int, cols: Int)? in
            let (cw, rh) = (bitmap.width - p, bitmap.height - p)
            guard cw > 0, rh > 0, cw % (w + p) == 0, rh % (h + p) == 0 else { return nil }
            return (p, rh / (h + p), cw / (w + p))
        }).first(where: { isPadding(bitmap, $0.p, tile: (h, w), rows: $0.rows, cols: $0.cols) }) else {
            throw DatasetError("\(path): a \(bitmap.width)x\(bitmap.height) picture is not a grid of \(w)x\(h) tiles with even "
                               + "padding (as `cmkit sample` writes); give the samples as .npy or as a folder of images instead")
        }
        let c = bitmap.channels, p = layout.p
        var tiles: [[Float]] = []
        for r in 0..<layout.rows {
            for col in 0..<layout.cols {
                var tile = [Float](repeating: 0, count: c * h * w)
                let (y0, x0) = (p + r * (h + p), p + col * (w + p))
                for ch in 0..<c { for y in 0..<h { for x in 0..<w {
                    tile[(ch * h + y) * w + x] = PixelMapping.value(bitmap[y0 + y, x0 + x, ch])
                } } }
                tiles.append(tile)
            }
        }
        // A partly filled last row leaves padding-coloured tiles.
        let padding = PixelMapping.value(p > 0 ? bitmap[0, 0, 0] : 0)
        while tiles.count > (layout.rows - 1) * layout.cols, let last = tiles.last, p > 0, last.allSatisfy({ $0 == padding }) {
            tiles.removeLast()
        }
        return Tensor(shape: [tiles.count, c, h, w], storage: tiles.flatMap { $0 })
    }

    /// Every pixel outside the tiles has one value (the padding colour); no padding also counts.
    private static func isPadding(_ b: Bitmap, _ p: Int, tile: (h: Int, w: Int), rows: Int, cols: Int) -> Bool {
        guard p > 0 else { return true }
        let value = b[0, 0, 0]
        for y in 0..<b.height {
            let inRow = y >= p && (y - p) % (tile.h + p) < tile.h
            for x in 0..<b.width {
                let inColumn = x >= p && (x - p) % (tile.w + p) < tile.w
                if inRow && inColumn { continue }
                for ch in 0..<b.channels where b[y, x, ch] != value { return false }
            }
        }
        return true
    }

    /// "x,y" lines (a header line of names is skipped).
    static func points(_ path: String) throws -> Tensor {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DatasetError("\(path): cannot be read as text") }
        var values: [Float] = [], width = 0
        for (number, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let numbers = fields.compactMap { Float($0) }
            if number == 0 && numbers.isEmpty { continue }
            guard numbers.count == fields.count, !numbers.isEmpty, width == 0 || numbers.count == width else {
                throw DatasetError("\(path): line \(number + 1) is not \(width == 0 ? "a row of numbers" : "\(width) numbers"): \(line)")
            }
            width = numbers.count
            values += numbers
        }
        guard width > 0 else { throw DatasetError("\(path): no points in it") }
        return Tensor(shape: [values.count / width, width], storage: values)
    }

    /// An RGB picture of gray images (R = G = B) becomes gray.
    static func matchingChannels(_ t: Tensor, _ sampleShape: [Int]) -> Tensor {
        guard t.rank == 4, sampleShape.count == 3, sampleShape[0] == 1, t.shape[1] == 3 else { return t }
        let (n, plane) = (t.shape[0], t.shape[2] * t.shape[3])
        for i in 0..<n { for j in 0..<plane {
            let r = t.storage[i * 3 * plane + j]
            if t.storage[(i * 3 + 1) * plane + j] != r || t.storage[(i * 3 + 2) * plane + j] != r { return t }
        } }
        return Tensor(shape: [n, 1, t.shape[2], t.shape[3]]) { out in
            for i in 0..<n { for j in 0..<plane { out[i * plane + j] = t.storage[i * 3 * plane + j] } }
        }
    }

    static func checked(_ t: Tensor, sampleShape: [Int], path: String) throws -> Tensor {
        let shape = Array(t.shape.dropFirst())
        guard shape == sampleShape else {
            let what = sampleShape.count == 3 ? "images of \(sampleShape[0]) channel\(sampleShape[0] == 1 ? "" : "s"), \(sampleShape[2])x\(sampleShape[1])" : "points of \(sampleShape[0]) coordinates"
            throw DatasetError("\(path): the samples have shape \(shape), but the data set has \(what)")
        }
        guard t.shape[0] >= 2 else { throw DatasetError("\(path): \(t.shape[0]) sample(s); at least 2 are needed for a score") }
        let bad = t.storage.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        guard bad == 0 else { throw DatasetError("\(path): \(bad) of \(t.count) values are NaN or infinite") }
        return t
    }
}
