// Reading other tools' samples for `cmkit score`: .npy arrays, PNG grids, folders, CSV points; and the
// clear errors for files that do not fit the data set.
import XCTest
import Foundation
import CKTensor
import CKImageIO
import CKDatasets
import CKTestSupport

final class SampleFilesTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("samplefiles-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Values on the 256 PNG levels, so a PNG round trip is exact.
    private func images(_ n: Int, _ c: Int, _ h: Int, _ w: Int, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: [n, c, h, w], storage: (0..<(n * c * h * w)).map { _ in PixelMapping.value(UInt8(rng.next() % 256)) })
    }

    /// numpy's layout by hand: magic, version 1.0, a header dict padded to 64 bytes, raw values.
    private func writeNPY(_ descr: String, shape: [Int], bytes data: [UInt8], to p: String) throws {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            + Array(header.utf8) + data
        try Data(bytes).write(to: URL(fileURLWithPath: p))
    }

    func testNPYRoundTripAndOtherElementTypes() throws {
        let x = images(3, 1, 4, 5, seed: 1)
        try NPY.write(x, to: path("a.npy"))
        let (back, type) = try NPY.read(path("a.npy"))
        XCTAssertEqual(type, .float32)
        XCTAssertEqual(back.shape, x.shape)
        XCTAssertEqual(back.storage, x.storage)
        // (N, H, W) float64 is read as gray images; uint8 pixels map to [-1, 1].
        let doubles: [Double] = [-1, 0.5, 0.25, 1, 0, -0.5, 0.75, -0.25]
        try writeNPY("<f8", shape: [2, 2, 2], bytes: doubles.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }, to: path("b.npy"))
        let gray = try SampleFiles.read(path("b.npy"), sampleShape: [1, 2, 2])
        XCTAssertEqual(gray.shape, [2, 1, 2, 2])
        XCTAssertEqual(gray.storage, doubles.map(Float.init))
        try writeNPY("|u1", shape: [2, 1, 1, 2], bytes: [0, 255, 51, 204], to: path("c.npy"))
        XCTAssertEqual(try SampleFiles.read(path("c.npy"), sampleShape: [1, 1, 2]).storage, [0, 255, 51, 204].map { Float($0) / 127.5 - 1 })
    }

    func testGridsAreCutIntoTheirTilesAndTrailingEmptyTilesDropped() throws {
        let x = images(11, 1, 6, 5, seed: 2)
        try ImageGrid.write(x, to: path("grid.png"), columns: 4)         // 3 rows, the last with 3 tiles and one empty
        let back = try SampleFiles.read(path("grid.png"), sampleShape: [1, 6, 5])
        XCTAssertEqual(back.shape, [11, 1, 6, 5])
        XCTAssertEqual(back.storage, x.storage)
        let rgb = images(4, 3, 6, 6, seed: 3)
        try ImageGrid.write(rgb, to: path("rgb.png"), columns: 2, padding: 3)
        XCTAssertEqual(try SampleFiles.read(path("rgb.png"), sampleShape: [3, 6, 6]).storage, rgb.storage)
    }

    func testFoldersAndGrayRGBAndPoints() throws {
        let x = images(3, 1, 4, 4, seed: 4)
        try FileManager.default.createDirectory(atPath: path("folder"), withIntermediateDirectories: true)
        for i in 0..<3 {
            // Saved as RGB with R = G = B, as some tools do: read back as gray.
            let gray = x.slice(i..<(i + 1)).reshaped([1, 4, 4])
            try PNG.write(Tensor(shape: [3, 4, 4], storage: gray.storage + gray.storage + gray.storage), to: path("folder/\(i).png"))
        }
        XCTAssertEqual(try SampleFiles.read(path("folder"), sampleShape: [1, 4, 4]).storage, x.storage)
        try "x,y\n0.5,-0.25\n1,2\n-3,0.125\n".write(toFile: path("p.csv"), atomically: true, encoding: .utf8)
        let points = try SampleFiles.read(path("p.csv"), sampleShape: [2])
        XCTAssertEqual(points.shape, [3, 2])
        XCTAssertEqual(points.storage, [0.5, -0.25, 1, 2, -3, 0.125])
    }

    func testFilesThatDoNotFitAreRefusedWithTheReason() throws {
        try NPY.write(images(4, 1, 8, 8, seed: 5), to: path("small.npy"))
        try NPY.write(Tensor(shape: [2, 1, 2, 2], storage: [0, .nan, 0, 0, 0, 0, 0, 0]), to: path("nan.npy"))
        try ImageGrid.write(images(4, 1, 8, 8, seed: 6), to: path("grid.png"))
        try Data("not numpy".utf8).write(to: URL(fileURLWithPath: path("junk.npy")))
        try "0.5,abc\n".write(toFile: path("bad.csv"), atomically: true, encoding: .utf8)
        let cases: [(file: String, shape: [Int], says: String)] = [
            ("small.npy", [1, 28, 28], "shape [1, 8, 8]"),
            ("nan.npy", [1, 2, 2], "NaN"),
            ("grid.png", [1, 28, 28], "not a grid of 28x28 tiles"),
            ("junk.npy", [1, 2, 2], "not a .npy file"),
            ("bad.csv", [2], "line 1"),
            ("missing.npy", [2], "no such file"),
            ("grid.png", [2], "has points"),
        ]
        for c in cases {
            XCTAssertThrowsError(try SampleFiles.read(path(c.file), sampleShape: c.shape), c.file) { error in
                XCTAssertTrue("\(error)".contains(c.says), "\(c.file): \(error)")
            }
        }
    }
}
