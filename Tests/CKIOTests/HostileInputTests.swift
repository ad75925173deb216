// IDX and NPY readers against hostile files: sizes that overflow, headers that promise more than the file
// holds, empty files, directories and FIFOs.
import CKDatasets
import CKImageIO
import CKTensor
import CKTestSupport
import Foundation
import XCTest

final class HostileInputTests: XCTestCase {
    func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// An IDX header of unsigned bytes with these sizes, then `data`.
    func idx(_ dims: [UInt32], data: [UInt8] = []) -> [UInt8] {
        [0, 0, 8, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8(truncatingIfNeeded: d >> (24 - 8 * UInt32($0))) } } + data
    }

    func error(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "nothing thrown"
    }

    // MARK: - IDX

    func testIDXSizesThatOverflowAreRefused() throws {
        let dir = try scratchDirectory(self)
        // 65536^4 = 2^64 wraps to 0 in wrapping arithmetic, which matched the 0 data bytes of this file.
        try write(idx([65536, 65536, 65536, 65536]), "\(dir)/wrap.idx")
        let wrap = error { _ = try IDX.read("\(dir)/wrap.idx") }
        XCTAssertTrue(wrap.contains("wrap.idx") && wrap.contains("[65536, 65536, 65536, 65536]"), wrap)
        // (2^32 - 1)^2 * 2^32 wraps to a small number too; (2^32 - 1)^2 alone overflows Int64.
        try write(idx([0xFFFF_FFFF, 0xFFFF_FFFF], data: [1, 2, 3]), "\(dir)/big.idx")
        XCTAssertTrue(error { _ = try IDX.read("\(dir)/big.idx") }.contains("big.idx"))
        // 2^31 x 16 fits in Int but not in the 6 bytes the file has: refused from the file's size.
        try write(idx([0x8000_0000, 16], data: [1, 2, 3, 4, 5, 6]), "\(dir)/claims.idx")
        let claims = error { _ = try IDX.read("\(dir)/claims.idx") }
        XCTAssertTrue(claims.contains("34359738368 values") && claims.contains("holds 6"), claims)
        // More data than the header says is refused as well.
        try write(idx([2, 2], data: [1, 2, 3, 4, 5]), "\(dir)/long.idx")
        XCTAssertTrue(error { _ = try IDX.read("\(dir)/long.idx") }.contains("holds 5"))
        try write(idx([2, 2], data: [1, 2, 3, 4]), "\(dir)/good.idx")
        XCTAssertEqual(try IDX.read("\(dir)/good.idx").bytes, [1, 2, 3, 4])
    }

    func testIDXEmptyDirectoryAndFIFOAreRefused() throws {
        let dir = try scratchDirectory(self)
        try write([], "\(dir)/empty-idx1-ubyte")
        let empty = error { _ = try IDX.read("\(dir)/empty-idx1-ubyte") }
        XCTAssertTrue(empty.contains("empty-idx1-ubyte") && empty.contains("empty"), empty)
        try FileManager.default.createDirectory(atPath: "\(dir)/folder.gz", withIntermediateDirectories: false)
        let folder = error { _ = try IDX.read("\(dir)/folder.gz") }
        XCTAssertTrue(folder.contains("folder.gz: is a directory"), folder)
        try makeFIFO("\(dir)/pipe.gz")
        let fifo = outcome(within: 5, unblocking: "\(dir)/pipe.gz") { _ = try IDX.read("\(dir)/pipe.gz") }
        XCTAssertFalse(fifo.timedOut, "reading an IDX FIFO blocked")
        XCTAssertTrue("\(fifo.error.map { "\($0)" } ?? "")".contains("pipe.gz: is a FIFO"), "\(String(describing: fifo.error))")
    }

    // MARK: - NPY

    func testNPYDirectoryAndFIFOAreRefused() throws {
        let dir = try scratchDirectory(self)
        try FileManager.default.createDirectory(atPath: "\(dir)/folder.npy", withIntermediateDirectories: false)
        let folder = error { _ = try NPY.read("\(dir)/folder.npy") }
        XCTAssertTrue(folder.contains("folder.npy: is a directory"), folder)
        try makeFIFO("\(dir)/pipe.npy")
        let fifo = outcome(within: 5, unblocking: "\(dir)/pipe.npy") { _ = try NPY.read("\(dir)/pipe.npy") }
        XCTAssertFalse(fifo.timedOut, "reading an NPY FIFO blocked")
        XCTAssertTrue("\(fifo.error.map { "\($0)" } ?? "")".contains("pipe.npy: is a FIFO"), "\(String(describing: fifo.error))")
        XCTAssertTrue(error { _ = try NPY.read("\(dir)/missing.npy") }.contains("missing.npy: no such file"))
    }
}
