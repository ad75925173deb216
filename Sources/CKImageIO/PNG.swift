// PNG files through libpng's simplified API (errors come back as return codes, never longjmp).
import CKTensor
import CPNG
import Foundation
import Glibc

/// An 8-bit image in memory: rows top to bottom, pixels interleaved (`channels` bytes per pixel).
public struct Bitmap: Equatable, Sendable {
    public var width: Int, height: Int
    public var channels: Int                    // 1 = gray, 3 = RGB
    public var pixels: [UInt8]                  // height * width * channels

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "Bitmap: \(channels) channels; only 1 (gray) or 3 (RGB)")
        precondition(pixels.count == width * height * channels,
                     "Bitmap: \(width)x\(height)x\(channels) needs \(width * height * channels) bytes, got \(pixels.count)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// A blank image filled with one gray level (every channel set to `fill`).
    public init(width: Int, height: Int, channels: Int, fill: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: fill, count: width * height * channels))
    }

    public subscript(y: Int, x: Int, c: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// The same picture with 3 channels (gray replicated).
    public func rgb() -> Bitmap {
        if channels == 3 { return self }
        var out = [UInt8](repeating: 0, count: pixels.count * 3)
        for i in pixels.indices { out[3 * i] = pixels[i]; out[3 * i + 1] = pixels[i]; out[3 * i + 2] = pixels[i] }
        return Bitmap(width: width, height: height, channels: 3, pixels: out)
    }
}

public struct PNGError: Error, CustomStringConvertible, Equatable {
    public let path: String, message: String
    public var description: String { "PNG \(path): \(message)" }
}

// MARK: - Value mapping

public enum PixelMapping {
    /// [-1, 1] -> 0...255: round((clamp(x, -1, 1) + 1) * 127.5). NaN maps to 0.
    @inline(__always)
    public static func byte(_ x: Float) -> UInt8 {
        guard !x.isNaN else { return 0 }
        let c = min(max(x, -1), 1)
        return UInt8(((c + 1) * 127.5).rounded())
    }

    /// 0...255 -> [-1, 1]: b / 127.5 - 1 (inverse of `byte` on the 256 levels).
    @inline(__always)
    public static func value(_ b: UInt8) -> Float { Float(b) / 127.5 - 1 }
}

extension Bitmap {
    /// One image (C, H, W) (or (1, C, H, W)) with values in [-1, 1]; C must be 1 or 3.
    public init(tensor x: Tensor) {
        var shape = x.shape
        if shape.count == 4 && shape[0] == 1 { shape.removeFirst() }
        precondition(shape.count == 3 && (shape[0] == 1 || shape[0] == 3),
                     "Bitmap(tensor:): expected (C, H, W) with C 1 or 3, got \(x.shape)")
        let (c, h, w) = (shape[0], shape[1], shape[2])
        var px = [UInt8](repeating: 0, count: c * h * w)
        x.storage.withUnsafeBufferPointer { src in
            for ch in 0..<c { for i in 0..<(h * w) { px[i * c + ch] = PixelMapping.byte(src[ch * h * w + i]) } }
        }
        self.init(width: w, height: h, channels: c, pixels: px)
    }

    /// (C, H, W) float tensor in [-1, 1].
    public func tensor() -> Tensor {
        let (c, hw) = (channels, width * height)
        return Tensor(shape: [c, height, width]) { out in
            for ch in 0..<c { for i in 0..<hw { out[ch * hw + i] = PixelMapping.value(pixels[i * c + ch]) } }
        }
    }
}

// MARK: - Files

public enum PNG {
    private static let flagAlpha: UInt32 = 0x01, flagColor: UInt32 = 0x02
    private static let flagLinear: UInt32 = 0x04, flagColormap: UInt32 = 0x08

    /// Writes an 8-bit gray (1 channel) or RGB (3 channels) PNG.
    public static func write(_ image: Bitmap, to path: String) throws {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 3 ? flagColor : 0
        // Written beside the target and renamed over it: a reader never sees half a picture.
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        let ok = image.pixels.withUnsafeBytes { buf in
            png_image_write_to_file(&png, temporary, 0, buf.baseAddress, Int32(image.width * image.channels), nil)
        }
        let message = messageOf(&png)
        png_image_free(&png)
        if ok == 0 { unlink(temporary); throw PNGError(path: path, message: "cannot write: \(message)") }
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw PNGError(path: path, message: "cannot write: \(reason)")
        }
    }

    /// Writes one image (C, H, W) with values in [-1, 1].
    public static func write(_ x: Tensor, to path: String) throws {
        try write(Bitmap(tensor: x), to: path)
    }

    /// Reads any PNG as 8-bit gray (gray or gray+alpha files) or RGB (color files); alpha is dropped.
    public static func readBitmap(_ path: String) throws -> Bitmap {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&png, path) != 0 else {
            let message = messageOf(&png)
            png_image_free(&png)
            throw PNGError(path: path, message: "cannot read: \(message)")
        }
        let color = png.format & flagColor != 0, alpha = png.format & flagAlpha != 0
        let fileChannels = (color ? 3 : 1) + (alpha ? 1 : 0)
        png.format = (color ? flagColor : 0) | (alpha ? flagAlpha : 0)      // 8-bit, no colormap
        let (w, h) = (Int(png.width), Int(png.height))
        var raw = [UInt8](repeating: 0, count: w * h * fileChannels)
        let ok = raw.withUnsafeMutableBytes { buf in
            png_image_finish_read(&png, nil, buf.baseAddress, Int32(w * fileChannels), nil)
        }
        let message = messageOf(&png)
        png_image_free(&png)
        guard ok != 0 else { throw PNGError(path: path, message: "cannot decode: \(message)") }
        guard alpha else { return Bitmap(width: w, height: h, channels: fileChannels, pixels: raw) }
        let c = fileChannels - 1
        var px = [UInt8](repeating: 0, count: w * h * c)
        for i in 0..<(w * h) { for ch in 0..<c { px[i * c + ch] = raw[i * fileChannels + ch] } }
        return Bitmap(width: w, height: h, channels: c, pixels: px)
    }

    /// Reads a PNG into (C, H, W) floats in [-1, 1]: C = 1 for gray, 3 for color.
    public static func read(_ path: String) throws -> Tensor {
        try readBitmap(path).tensor()
    }

    private static func messageOf(_ png: inout png_image) -> String {
        let text = withUnsafeBytes(of: &png.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "libpng gave no reason" : text
    }
}
