// PNG files: written through libpng's simplified API, read through its full API in CPNGReader (values as
// stored: no gamma conversion, 16 bits kept). Errors come back as return codes, never longjmp.
import CKTensor
import CPNG
import CPNGReader
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
    private static let flagColor: UInt32 = 0x02

    /// Writes an 8-bit gray (1 channel) or RGB (3 channels) PNG.
    public static func write(_ image: Bitmap, to path: String) throws {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 3 ? flagColor : 0
        // Encoded in memory, then written atomically (as NPY files are): a reader never sees half a picture.
        let stride = Int32(image.width * image.channels)
        var size = 0
        var ok = image.pixels.withUnsafeBytes { png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, stride, nil) }
        var encoded = [UInt8](repeating: 0, count: ok != 0 ? size : 0)
        if ok != 0 {
            ok = encoded.withUnsafeMutableBytes { out in
                image.pixels.withUnsafeBytes { png_image_write_to_memory(&png, out.baseAddress, &size, 0, $0.baseAddress, stride, nil) }
            }
        }
        let message = messageOf(&png)
        png_image_free(&png)
        guard ok != 0 else { throw PNGError(path: path, message: "cannot encode: \(message)") }
        do { try Data(encoded.prefix(size)).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw PNGError(path: path, message: "cannot write: \((error as NSError).localizedDescription); check the folder exists and has space")
        }
    }

    /// Writes one image (C, H, W) with values in [-1, 1].
    public static func write(_ x: Tensor, to path: String) throws {
        try write(Bitmap(tensor: x), to: path)
    }

    /// The most pixels (width * height) `read` and `readBitmap` accept: 2^28, a 16384 x 16384 picture.
    /// Larger headers are refused before any pixel memory is allocated.
    public static let maxPixels = 1 << 28

    /// Reads any PNG as 8-bit gray (gray or gray+alpha files) or RGB (colour and palette files); alpha is
    /// dropped. Values are as stored (no gamma conversion); 16-bit samples are rounded to 8 bits.
    public static func readBitmap(_ path: String) throws -> Bitmap {
        let image = try decode(path)
        let n = image.width * image.height * image.channels
        guard image.bitDepth == 16 else {
            return Bitmap(width: image.width, height: image.height, channels: image.channels, pixels: image.samples)
        }
        var px = [UInt8](repeating: 0, count: n)
        image.samples.withUnsafeBytes { raw in
            for i in 0..<n {      // round(v * 255 / 65535); never a tie, so no rounding rule to pick
                px[i] = UInt8((UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * 255 + 32767) / 65535)
            }
        }
        return Bitmap(width: image.width, height: image.height, channels: image.channels, pixels: px)
    }

    /// Reads a PNG into (C, H, W) floats in [-1, 1] exactly as stored: C = 1 for gray, 3 for colour and
    /// palette files (alpha dropped); 8-bit v gives v / 127.5 - 1, 16-bit v gives v / 65535 * 2 - 1.
    public static func read(_ path: String) throws -> Tensor {
        let image = try decode(path)
        let (c, hw) = (image.channels, image.width * image.height)
        return Tensor(shape: [c, image.height, image.width]) { out in
            image.samples.withUnsafeBytes { raw in
                if image.bitDepth == 16 {
                    for ch in 0..<c { for i in 0..<hw {
                        let v = raw.loadUnaligned(fromByteOffset: 2 * (i * c + ch), as: UInt16.self)
                        out[ch * hw + i] = Float(Double(v) / 32767.5 - 1)
                    } }
                } else {
                    for ch in 0..<c { for i in 0..<hw { out[ch * hw + i] = PixelMapping.value(raw[i * c + ch]) } }
                }
            }
        }
    }

    /// A decoded file: interleaved samples, rows top to bottom; 16-bit samples in host byte order.
    struct Decoded {
        var width: Int, height: Int, channels: Int, bitDepth: Int
        var samples: [UInt8]
    }

    /// Decodes with libpng (through CPNGReader), refusing non-files and oversized headers before allocating.
    static func decode(_ path: String) throws -> Decoded {
        var reader: OpaquePointer?
        var header = ck_png_header()
        var message = [CChar](repeating: 0, count: 512)
        func text() -> String { String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        func cannotDecode() -> PNGError {
            let reason = text()       // a short read already says the file is truncated
            return PNGError(path: path, message: "cannot decode: \(reason)" + (reason.contains("truncated") ? "" : "; the file is corrupt or truncated"))
        }
        let opened = ck_png_open(path, &reader, &header, &message, message.count)
        guard opened == CK_PNG_OK, let reader else {
            switch Int(opened) {
            case Int(CK_PNG_CANNOT_OPEN): throw PNGError(path: path, message: "cannot open: \(text()); check the path")
            case Int(CK_PNG_NOT_REGULAR): throw PNGError(path: path, message: "\(text()); give the path of a .png file")
            case Int(CK_PNG_EMPTY): throw PNGError(path: path, message: "is empty (0 bytes); it was not written completely, write or copy it again")
            case Int(CK_PNG_NOT_PNG): throw PNGError(path: path, message: "\(text()); is it really a PNG?")
            default: throw cannotDecode()
            }
        }
        defer { ck_png_close(reader) }
        let (w, h, c, depth) = (Int(header.width), Int(header.height), Int(header.channels), Int(header.bit_depth))
        let pixels = w.multipliedReportingOverflow(by: h)
        guard !pixels.overflow, pixels.partialValue <= maxPixels else {
            let bytes = UInt64(header.width) * UInt64(header.height) * UInt64(c * depth / 8)
            throw PNGError(path: path, message: "its header declares \(w)x\(h) pixels, which would need \(bytes) bytes "
                           + "(\(c) channel\(c == 1 ? "" : "s") of \(depth) bits); images over \(maxPixels) (2^28) pixels are "
                           + "refused; the file is corrupt, or scale the picture down")
        }
        // Deflate compresses at most 1032:1, so a small file cannot hold a big image: refuse that before
        // allocating too (a 100-byte file may not claim 2^28 pixels).
        let fileChannels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(header.file_color_type)] ?? 4
        let fileRowBytes = (UInt64(header.width) * UInt64(fileChannels) * UInt64(header.file_bit_depth) + 7) / 8
        let imageData = UInt64(header.height) * (fileRowBytes + 1)            // + 1: the filter byte of each row
        guard imageData / 1032 <= header.file_bytes else {
            throw PNGError(path: path, message: "its header declares \(w)x\(h) pixels (\(imageData) bytes of image data), more than "
                           + "its \(header.file_bytes) bytes can hold even at deflate's best compression (1032:1); "
                           + "the file is truncated or corrupt")
        }
        let size = Int(header.row_bytes) * h
        var samples = [UInt8](repeating: 0, count: size)
        let decoded = samples.withUnsafeMutableBytes { ck_png_decode(reader, $0.baseAddress, $0.count, &message, message.count) }
        guard decoded == CK_PNG_OK else { throw cannotDecode() }
        return Decoded(width: w, height: h, channels: c, bitDepth: depth, samples: samples)
    }

    private static func messageOf(_ png: inout png_image) -> String {
        let text = withUnsafeBytes(of: &png.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "libpng gave no reason" : text
    }
}
