// Seeded byte-mutation fuzzing of the PNG, IDX and NPY readers: every variant of a valid small file must
// either read (with a consistent result) or throw the reader's error, never trap, hang or crash. Release
// builds use -Ounchecked, so the readers must check offsets themselves; a crash here fails the whole run.
import CKDatasets
import CKImageIO
import CKTensor
import CKTestSupport
import Foundation
import XCTest

final class ReaderFuzzTests: XCTestCase {
    static let variantsPerReader = 400

    /// Writes each variant to one scratch file and calls `read`; counts reads and refusals, fails on anything
    /// but the reader's error type. With CK_TEST_OUTPUT set, a variant that fails is kept there.
    func fuzz(_ name: String, variants: [[UInt8]], read: (String) throws -> Void, isReadersError: (Error) -> Bool) throws {
        let dir = try scratchDirectory(self)
        let path = "\(dir)/variant.\(name.lowercased())"
        var (ok, refused) = (0, 0)
        let start = Date()
        for (k, bytes) in variants.enumerated() {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do { try read(path); ok += 1 } catch where isReadersError(error) { refused += 1 } catch {
                if let kept = ProcessInfo.processInfo.environment["CK_TEST_OUTPUT"] {
                    try? Data(bytes).write(to: URL(fileURLWithPath: "\(kept)/fuzz-\(name)-\(k)"))
                }
                XCTFail("\(name) variant \(k): unexpected \(type(of: error)): \(error)")
            }
        }
        print("fuzz \(name): \(variants.count) variants, \(ok) read, \(refused) refused, "
              + String(format: "%.2f s", Date().timeIntervalSince(start)))
    }

    // MARK: - PNG

    func testMutatedPNGsReadOrThrow() throws {
        let fixtures = PNGReadingTests.fixtures
        let seeds = try ["gray16.png", "rgb16.png", "palette2-trns.png", "gray8-adam7.png", "gray-alpha8.png", "gray1.png"]
            .map { [UInt8](try Data(contentsOf: fixtures.appendingPathComponent($0))) }
        var m = Mutator(seed: 1)
        let variants = (0..<Self.variantsPerReader).map { k -> [UInt8] in
            let mutated = m.mutate(seeds[k % seeds.count], hot: 8..<33)           // signature and IHDR
            return k % 2 == 0 ? fixingPNGChunkCRCs(mutated) : mutated              // half get past the CRC checks
        }
        try fuzz("PNG", variants: variants, read: { path in
            let t = try PNG.read(path)
            XCTAssertEqual(t.rank, 3)
            XCTAssertTrue(t.shape[0] == 1 || t.shape[0] == 3)
            XCTAssertTrue(t.storage.allSatisfy { $0 >= -1 && $0 <= 1 })
            let b = try PNG.readBitmap(path)
            XCTAssertEqual([b.channels, b.height, b.width], t.shape)
        }, isReadersError: { $0 is PNGError })
    }

    // MARK: - IDX

    func testMutatedIDXFilesReadOrThrow() throws {
        let plain: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2] + (0..<12).map { UInt8($0 * 21) }
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 9]
        let seeds = [plain, labels, gzipStored(plain), gzipStored(labels)]
        var m = Mutator(seed: 2)
        let variants = (0..<Self.variantsPerReader).map { k in m.mutate(seeds[k % seeds.count], hot: k % 4 < 2 ? 0..<16 : 10..<30) }
        try fuzz("IDX", variants: variants, read: { path in
            let (dims, bytes) = try IDX.read(path)
            XCTAssertEqual(dims.reduce(1, *), bytes.count)
        }, isReadersError: { $0 is DatasetError })
    }

    // MARK: - NPY

    /// A .npy file (version 1.0) with this header dict and data, padded like numpy's.
    func npy(_ dict: String, _ data: [UInt8]) -> [UInt8] {
        var header = Array(dict.utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0A)
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 255), UInt8(header.count >> 8)] + header + data
    }

    func testMutatedNPYFilesReadOrThrow() throws {
        let dir = try scratchDirectory(self)
        try NPY.write(Tensor(shape: [2, 1, 2, 2], storage: (0..<8).map { Float($0) / 8 }), to: "\(dir)/seed.npy")
        let seeds = [[UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/seed.npy"))),
                     npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", (0..<24).map { UInt8($0) }),
                     npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", [1, 2, 3, 4, 5, 6]),
                     npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", [0, 0, 0x80, 0x3F])]
        var m = Mutator(seed: 3)
        let variants = (0..<Self.variantsPerReader).map { k -> [UInt8] in
            let seed = seeds[k % seeds.count]
            guard k % 3 == 0 else { return m.mutate(seed, hot: 0..<12) }
            // A number in the header text set to an extreme, the header length kept consistent.
            let length = Int(seed[8]) | Int(seed[9]) << 8
            var (b, delta) = m.replacingNumber(in: seed, within: 10..<(10 + length))
            let fixed = length + delta
            b[8] = UInt8(fixed & 255); b[9] = UInt8((fixed >> 8) & 255)
            return b
        }
        try fuzz("NPY", variants: variants, read: { path in
            let (t, _) = try NPY.read(path)
            XCTAssertEqual(t.shape.reduce(1, *), t.storage.count)
        }, isReadersError: { $0 is NPYError })
    }
}
