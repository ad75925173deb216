// libFuzzer harness: PNG.read and PNG.readBitmap either succeed consistently or throw PNGError.
// Inputs of odd length get their chunk CRCs recomputed first, so mutations inside chunks reach libpng's
// decoding and our transformations instead of stopping at the CRC check (libpng itself is not instrumented).
import CKImageIO
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")  // also the symbol libFuzzer's own main (linked in) refers to
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if size % 2 == 1 { fixChunkCRCs(&bytes) }
    let path = bytes.withUnsafeBufferPointer { inputFile($0.baseAddress ?? data, $0.count, suffix: ".png") }
    do {
        let t = try PNG.read(path)
        precondition(t.rank == 3 && (t.shape[0] == 1 || t.shape[0] == 3), "PNG.read shape \(t.shape)")
        precondition(t.storage.allSatisfy { $0 >= -1 && $0 <= 1 }, "PNG.read: a value outside [-1, 1]")
        let b = try PNG.readBitmap(path)
        precondition([b.channels, b.height, b.width] == t.shape, "readBitmap \(b.width)x\(b.height)x\(b.channels) vs read \(t.shape)")
    } catch is PNGError {} catch { unexpected(error, "PNG") }
    return 0
}

/// Recomputes the CRC-32 of every whole chunk after the 8-byte signature.
func fixChunkCRCs(_ b: inout [UInt8]) {
    var o = 8
    while o + 12 <= b.count {
        let length = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
        guard length <= b.count - o - 12 else { return }
        var c: UInt32 = 0xFFFF_FFFF
        for x in b[(o + 4)..<(o + 8 + length)] { c = crcTable[Int((c ^ UInt32(x)) & 0xFF)] ^ (c >> 8) }
        c ^= 0xFFFF_FFFF
        for k in 0..<4 { b[o + 8 + length + k] = UInt8(truncatingIfNeeded: c >> (24 - 8 * UInt32(k))) }
        o += 12 + length
    }
}

let crcTable: [UInt32] = (0..<256).map { n in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

runFuzzer { data, size in fuzzPNG(data, size) }
