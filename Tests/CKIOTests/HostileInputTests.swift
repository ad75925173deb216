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
        try assertRefusesDirectoryAndFIFO(in: dir, suffix: ".gz") { _ = try IDX.read($0) }
    }

    /// A directory and a FIFO named like the reader's files are refused by name, the FIFO without blocking.
    private func assertRefusesDirectoryAndFIFO(in dir: String, suffix: String, read: @escaping (String) throws -> Void,
                                               line: UInt = #line) throws {
        try FileManager.default.createDirectory(atPath: "\(dir)/folder\(suffix)", withIntermediateDirectories: false)
        let folder = error { try read("\(dir)/folder\(suffix)") }
        XCTAssertTrue(folder.contains("folder\(suffix): is a directory"), folder, line: line)
        try makeFIFO("\(dir)/pipe\(suffix)")
        let fifo = outcome(within: 5, unblocking: "\(dir)/pipe\(suffix)") { try read("\(dir)/pipe\(suffix)") }
        XCTAssertFalse(fifo.timedOut, "reading a FIFO blocked", line: line)
        XCTAssertTrue("\(fifo.error.map { "\($0)" } ?? "")".contains("pipe\(suffix): is a FIFO"), "\(String(describing: fifo.error))", line: line)
    }

    // MARK: - NPY

    func testNPYDirectoryAndFIFOAreRefused() throws {
        let dir = try scratchDirectory(self)
        try assertRefusesDirectoryAndFIFO(in: dir, suffix: ".npy") { _ = try NPY.read($0) }
        XCTAssertTrue(error { _ = try NPY.read("\(dir)/missing.npy") }.contains("missing.npy: no such file"))
    }
}
