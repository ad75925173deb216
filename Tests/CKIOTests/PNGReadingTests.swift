// PNG reading against PIL (Fixtures/png, made by make_png_fixtures.py) and against hostile files: absurd
// headers, empty files, directories and FIFOs.
import CKImageIO
import CKDatasets
import CKTensor
import CKTestSupport
import Foundation
import XCTest

final class PNGReadingTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/png")

    struct Case {
        let name: String, width: Int, height: Int, channels: Int
        let stored: [Int], storedMax: Int          // samples as stored (palette and low-bit gray expanded, alpha dropped)
        let pil: [Int], pilMax: Int, pilMode: String
    }

    func cases() throws -> [Case] {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("pil.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let all = try XCTUnwrap(json["cases"] as? [String: [String: Any]])
        return try all.keys.sorted().map { name in
            let c = all[name]!
            func int(_ key: String) throws -> Int { try XCTUnwrap(c[key] as? Int, "\(name): \(key)") }
            func ints(_ key: String) throws -> [Int] { try XCTUnwrap(c[key] as? [Int], "\(name): \(key)") }
            return Case(name: name, width: try int("width"), height: try int("height"), channels: try int("channels"),
                        stored: try ints("stored"), storedMax: try int("stored_max"),
                        pil: try ints("pil"), pilMax: try int("pil_max"), pilMode: try XCTUnwrap(c["pil_mode"] as? String))
        }
    }

    // MARK: - Values as stored, as PIL reads them

    func testFixturesReadAsPILReadsThem() throws {
        let all = try cases()
        XCTAssertEqual(all.count, 17)
        var table: [String] = []
        for c in all {
            let path = Self.fixtures.appendingPathComponent(c.name).path
            let n = c.width * c.height * c.channels
            XCTAssertEqual(c.stored.count, n, c.name)
            let t = try PNG.read(path)
            let bitmap = try PNG.readBitmap(path)
            XCTAssertEqual(t.shape, [c.channels, c.height, c.width], c.name)
            XCTAssertEqual([bitmap.channels, bitmap.height, bitmap.width], [c.channels, c.height, c.width], c.name)
            guard t.shape == [c.channels, c.height, c.width], bitmap.pixels.count == n else { continue }
            let hw = c.width * c.height
            // Exact: v / max * 2 - 1, from the interleaved sample k to the plane of its channel.
            let want = (0..<n).map { k in Float(Double(c.stored[k]) / (Double(c.storedMax) / 2) - 1) }
            let got = (0..<n).map { k in t.storage[(k % c.channels) * hw + k / c.channels] }
            assertClose(got, want, atol: 1e-7, rtol: 0, "\(c.name): floats as stored")
            // PIL agrees with what was stored wherever it keeps the file's precision; 16-bit RGB it cuts to the
            // high byte, which is within one level of our rounding.
            if c.pilMax == c.storedMax {
                XCTAssertEqual(c.pil, c.stored, "\(c.name): PIL's reading")
                if c.storedMax == 255 { XCTAssertEqual(bitmap.pixels.map(Int.init), c.pil, "\(c.name): bytes") }
            } else {
                XCTAssertEqual(c.pilMax, 255, c.name)
                let far = zip(bitmap.pixels, c.pil).filter { abs(Int($0) - $1) > 1 }
                XCTAssertTrue(far.isEmpty, "\(c.name): bytes more than one level from PIL's: \(far.prefix(5))")
            }
            // One sample near the middle of the range, for the table in the report.
            let k = c.stored.indices.min { abs(2 * c.stored[$0] - c.storedMax - 1) < abs(2 * c.stored[$1] - c.storedMax - 1) }!
            table.append("\(c.name) (PIL \(c.pilMode)): PIL \(c.pil[k])/\(c.pilMax), we read \(got[k]) "
                         + "(\(String(format: "%.2f", (got[k] + 1) * 127.5))/255, byte \(bitmap.pixels[k]))")
        }
        print("PNG fixtures, the sample nearest mid-range:\n  " + table.joined(separator: "\n  "))
    }

    func testSixteenBitGrayHalfIsNotGammaConverted() throws {
        // The case from the issue: 32768 in a 16-bit gray file read as 186/255 through linear light.
        let t = try PNG.read(Self.fixtures.appendingPathComponent("gray16.png").path)
        XCTAssertEqual(t.storage[1], Float(32768.0 / 32767.5 - 1), "32768 / 65535 * 2 - 1, not rounded to 8 bits")
        XCTAssertEqual(try PNG.readBitmap(Self.fixtures.appendingPathComponent("gray16.png").path).pixels[1], 128)
        // 8-bit 128 with gAMA 1.0 stays 128.
        XCTAssertEqual(try PNG.readBitmap(Self.fixtures.appendingPathComponent("gray8-gama1.0.png").path).pixels[4], 128)
    }

    func testImageFolderKeepsSixteenBits() throws {
        let dir = try scratchDirectory(self)
        for name in ["a.png", "b.png"] {
            try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("gray16.png").path, toPath: "\(dir)/\(name)")
        }
        let (images, _) = try ImageFolder.load(dir)
        XCTAssertEqual(images.shape, [2, 1, 2, 4])
        XCTAssertEqual(images.storage[8 + 1], Float(32768.0 / 32767.5 - 1), "b.png's 32768, exact")
    }

    // MARK: - Hostile files

    /// A PNG whose IHDR declares `width` x `height` (8-bit gray) with a few bytes of image data.
    func headerOnlyPNG(width: Int, height: Int, colorType: UInt8 = 0, depth: UInt8 = 8) -> Data {
        let ihdr = be32(width) + be32(height) + [depth, colorType, 0, 0, 0]
        return Data(pngSignature + pngChunk("IHDR", ihdr) + pngChunk("IDAT", zlibStored([0, 1, 2, 3])) + pngChunk("IEND", []))
    }

    func testAbsurdSizesAreRefusedBeforeAllocating() throws {
        let dir = try scratchDirectory(self)
        // 20000 x 20000 8-bit gray: 4e8 pixels, over 2^28. 100000 x 100000 16-bit RGB: 6e10 bytes.
        for (w, h, type, depth, bytes) in [(20000, 20000, UInt8(0), UInt8(8), "400000000"),
                                           (100_000, 100_000, UInt8(2), UInt8(16), "60000000000")] {
            let path = "\(dir)/huge-\(w).png"
            try headerOnlyPNG(width: w, height: h, colorType: type, depth: depth).write(to: URL(fileURLWithPath: path))
            // The messages come from the header checks, which run before any image buffer exists.
            for read in [{ _ = try PNG.read(path) }, { _ = try PNG.readBitmap(path) }] {
                XCTAssertThrowsError(try read()) { error in
                    let text = "\(error)"
                    XCTAssertTrue(text.contains("huge-\(w).png") && text.contains("\(w)x\(h)") && text.contains(bytes)
                                  && text.contains("2^28"), text)
                }
            }
        }
    }

    func testSmallFilesCannotClaimBigImages() throws {
        // 16000 x 16000 is under 2^28 pixels, but 256 MB of image data cannot fit in a 70-byte file.
        let dir = try scratchDirectory(self)
        try headerOnlyPNG(width: 16000, height: 16000).write(to: URL(fileURLWithPath: "\(dir)/claims.png"))
        XCTAssertThrowsError(try PNG.read("\(dir)/claims.png")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("claims.png") && text.contains("16000x16000") && text.contains("1032:1"), text)
        }
    }

    func testEmptyFileSaysItIsEmpty() throws {
        let dir = try scratchDirectory(self)
        try Data().write(to: URL(fileURLWithPath: "\(dir)/empty.png"))
        XCTAssertThrowsError(try PNG.read("\(dir)/empty.png")) { error in
            XCTAssertTrue("\(error)".contains("empty.png") && "\(error)".contains("is empty (0 bytes)"), "\(error)")
        }
        try Data(pngSignature.prefix(5)).write(to: URL(fileURLWithPath: "\(dir)/five.png"))
        XCTAssertThrowsError(try PNG.read("\(dir)/five.png")) { error in
            XCTAssertTrue("\(error)".contains("only 5 bytes"), "\(error)")
        }
    }

    func testDirectoriesAndFIFOsAreRefusedNotWaitedOn() throws {
        let dir = try scratchDirectory(self)
        try FileManager.default.createDirectory(atPath: "\(dir)/folder.png", withIntermediateDirectories: false)
        XCTAssertThrowsError(try PNG.read("\(dir)/folder.png")) { error in
            XCTAssertTrue("\(error)".contains("folder.png: is a directory"), "\(error)")
        }
        try makeFIFO("\(dir)/pipe.png")
        let direct = outcome(within: 5, unblocking: "\(dir)/pipe.png") { _ = try PNG.readBitmap("\(dir)/pipe.png") }
        XCTAssertFalse(direct.timedOut, "reading a FIFO blocked")
        XCTAssertTrue("\(direct.error.map { "\($0)" } ?? "nothing thrown")".contains("pipe.png: is a FIFO"), "\(String(describing: direct.error))")
    }

    func testImageFolderWithAFIFORefusesIt() throws {
        let dir = try scratchDirectory(self)
        try PNG.write(Bitmap(width: 4, height: 4, channels: 1, fill: 9), to: "\(dir)/a.png")
        try makeFIFO("\(dir)/x.png")
        let loaded = outcome(within: 5, unblocking: "\(dir)/x.png") { _ = try ImageFolder.load(dir) }
        XCTAssertFalse(loaded.timedOut, "the folder loader blocked on x.png")
        let text = loaded.error.map { "\($0)" } ?? "nothing thrown"
        XCTAssertTrue(text.contains("x.png") && text.contains("FIFO"), text)
    }
}
