// Scratch folders for file tests, and a hand-written PNG encoder (stored deflate) to feed the reader
// files our writer never produces (gray+alpha, RGBA).
import Foundation
import XCTest

/// A fresh temporary folder, removed by the caller's `addTeardownBlock`. With CK_TEST_OUTPUT set, pictures
/// meant for eyeballing go there instead and are kept.
func scratchDirectory(_ test: XCTestCase) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckio-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

func keptOutputDirectory(_ test: XCTestCase) throws -> String {
    if let kept = ProcessInfo.processInfo.environment["CK_TEST_OUTPUT"] {
        try FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)
        return kept
    }
    return try scratchDirectory(test)
}

func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

/// CRC-32 (IEEE, as PNG and zlib use it), bit by bit: slow, obviously right, and fine for tiny files.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    }
    return c ^ 0xFFFF_FFFF
}

/// A PNG chunk: length, type, body, CRC of type and body.
func pngChunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
    let typed = Array(type.utf8) + body
    return be32(body.count) + typed + be32(Int(crc32(typed)))
}

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

/// A zlib stream of stored (uncompressed) blocks.
func zlibStored(_ raw: [UInt8]) -> [UInt8] {
    var a: UInt32 = 1, b: UInt32 = 0                       // Adler-32 of the uncompressed stream
    for x in raw { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
    return [0x78, 0x01] + storedDeflateBlocks(raw) + be32(Int(b << 16 | a))
}

/// `raw` as deflate stored blocks (no compression), the last one marked final.
func storedDeflateBlocks(_ raw: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var offset = 0
    repeat {
        let n = min(65535, raw.count - offset), last: UInt8 = offset + n == raw.count ? 1 : 0
        out += [last, UInt8(n & 255), UInt8(n >> 8), UInt8(~n & 255), UInt8((~n >> 8) & 255)]
        out += raw[offset..<(offset + n)]
        offset += n
    } while offset < raw.count
    return out
}

/// Minimal PNG: IHDR (8-bit, `colorType` 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA), one IDAT with a zlib
/// stream of stored blocks (filter 0 on every row), IEND.
func handMadePNG(width: Int, height: Int, colorType: UInt8, pixels: [UInt8]) -> Data {
    let perPixel = [0: 1, 2: 3, 4: 2, 6: 4][Int(colorType)]!
    var raw: [UInt8] = []
    for y in 0..<height { raw.append(0); raw += pixels[(y * width * perPixel)..<((y + 1) * width * perPixel)] }
    let ihdr = be32(width) + be32(height) + [8, colorType, 0, 0, 0]
    return Data(pngSignature + pngChunk("IHDR", ihdr) + pngChunk("IDAT", zlibStored(raw)) + pngChunk("IEND", []))
}

/// A gzip member of stored deflate blocks (what `gzip` writes, minus the compression).
func gzipStored(_ raw: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF] + storedDeflateBlocks(raw)
    let le32 = { (v: UInt32) in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
    return out + le32(crc32(raw)) + le32(UInt32(truncatingIfNeeded: raw.count))
}

/// Recomputes the CRC of every whole chunk of a PNG (after the signature), so mutations reach the decoder
/// instead of stopping at the CRC check.
func fixingPNGChunkCRCs(_ bytes: [UInt8]) -> [UInt8] {
    var b = bytes, o = 8
    while o + 12 <= b.count {
        let length = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
        guard length <= b.count - o - 12 else { break }
        let crc = be32(Int(crc32(b[(o + 4)..<(o + 8 + length)])))
        b.replaceSubrange((o + 8 + length)..<(o + 12 + length), with: crc)
        o += 12 + length
    }
    return b
}
