// Checkpoints you can trust: the same bytes from every process, a checksum of the data, no NaN loaded into
// parameters, no temporary files left by killed writers, directories and FIFOs named as such.
import XCTest
import Foundation
import CKTensor
import CKTestSupport
@testable import CKNN

final class CheckpointTrustTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ck-trust-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "nothing thrown"
    }

    // MARK: - Deterministic bytes

    /// 40 metadata keys inserted in the given order, and three tensors.
    static func canonical(keys: [Int]) -> Checkpoint {
        var c = Checkpoint(tensors: [("b.weight", Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])),
                                     ("a.bias", Tensor(shape: [2], storage: [-0.5, 0.25])),
                                     ("z", Tensor(scalar: 7))])
        for k in keys { c.metadata["key.\(k)"] = "value \(k * k)" }
        c.metadata["é"] = "accent"; c.metadata["Z"] = "upper"; c.metadata["config"] = #"{"a":1}"#
        return c
    }

    /// Not a test on its own: writes the canonical checkpoint where CK_CHECKPOINT_WRITE says, for the
    /// other-process test below (which runs this test binary again with that variable set).
    func testWriteCanonicalCheckpointForAnotherProcess() throws {
        guard let path = ProcessInfo.processInfo.environment["CK_CHECKPOINT_WRITE"] else { return }
        try Self.canonical(keys: Array(0..<40).reversed()).write(to: URL(fileURLWithPath: path))
    }

    func testTheSameCheckpointIsTheSameBytesInEveryProcess() throws {
        // In this process: keys inserted in three orders (dictionary order differs with insertion history).
        var rng = SplitMix64(seed: 9)
        let orders = [Array(0..<40), Array(0..<40).reversed(), Array(0..<40).shuffled(using: &rng)]
        var files: [[UInt8]] = []
        for (k, order) in orders.enumerated() {
            let url = dir.appendingPathComponent("here-\(k).safetensors")
            try Self.canonical(keys: order).write(to: url)
            files.append([UInt8](try Data(contentsOf: url)))
        }
        // In two other processes (Swift seeds its hashing per process, so dictionary order changes).
        let binary = CommandLine.arguments[0]
        guard binary.hasSuffix(".xctest") else { throw XCTSkip("not run from an .xctest binary (\(binary))") }
        for k in 0..<2 {
            let url = dir.appendingPathComponent("process-\(k).safetensors")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["CKNNTests.CheckpointTrustTests/testWriteCanonicalCheckpointForAnotherProcess"]
            process.environment = ProcessInfo.processInfo.environment.merging(["CK_CHECKPOINT_WRITE": url.path]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            files.append([UInt8](try Data(contentsOf: url)))
        }
        for (k, f) in files.enumerated() { XCTAssertEqual(f, files[0], "file \(k) differs from file 0") }
        // Metadata keys in UTF-8 byte order, the checksum among them; tensors in their given order.
        let text = String(decoding: files[0], as: UTF8.self)
        let keys = ["\"Z\"", "\"config\"", "\"data_checksum\"", "\"key.0\"", "\"key.1\"", "\"key.10\"", "\"key.9\"", "\"é\"",
                    "\"b.weight\"", "\"a.bias\"", "\"z\""]
        let positions = keys.map { text.range(of: $0)?.lowerBound }
        XCTAssertFalse(positions.contains(nil), "\(zip(keys, positions).filter { $0.1 == nil }.map(\.0))")
        XCTAssertEqual(positions.compactMap { $0 }, positions.compactMap { $0 }.sorted(), "header order")
    }

    // MARK: - Checksum

    func testDataChecksumIsWrittenAndChecked() throws {
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try Checkpoint(tensors: [("w", Tensor(shape: [4], storage: [1, 2, 3, 4]))], metadata: ["step": "3"]).write(to: url)
        let good = [UInt8](try Data(contentsOf: url))
        XCTAssertTrue(String(decoding: good, as: UTF8.self).contains(#""data_checksum":"crc32:"#))
        let back = try Checkpoint.read(from: url)
        XCTAssertEqual(back.metadata, ["step": "3"], "the checksum is the file's, not part of the metadata")

        // Every single-byte change in the data section is caught (CRC-32 detects all of them).
        for i in (good.count - 16)..<good.count {
            var bytes = good
            bytes[i] ^= 0x10
            try Data(bytes).write(to: url)
            let text = message { _ = try Checkpoint.read(from: url) }
            XCTAssertTrue(text.contains("ckpt.safetensors") && text.contains("does not match its checksum")
                          && text.contains("the file is corrupt"), text)
        }
        // A checksum that is not crc32:<8 hex digits> is reported as such.
        let edited = String(decoding: good, as: UTF8.self).replacingOccurrences(of: "crc32:", with: "md5:xx")
        try Data(edited.utf8).write(to: url)
        XCTAssertTrue(message { _ = try Checkpoint.read(from: url) }.contains("data_checksum"))
    }

    /// The checksum is zlib's CRC-32 (Python's zlib.crc32 gives the same text): the standard check value, and
    /// the same result over a buffer split in two. (Its cost, 1.2 ms for 5 MiB, is a benchmark figure, not a test.)
    func testChecksumIsZlibsCRC32() throws {
        let check = Array("123456789".utf8)
        XCTAssertEqual(check.withUnsafeBytes { Checkpoint.crc32($0) }, 0xCBF4_3926)
        XCTAssertEqual(Checkpoint.checksumText(0xCBF4_3926), "crc32:cbf43926")
        let first = check[0..<4].withUnsafeBytes { Checkpoint.crc32($0) }
        XCTAssertEqual(check[4...].withUnsafeBytes { Checkpoint.crc32($0, continuing: first) }, 0xCBF4_3926)
    }

    // MARK: - Non-finite values

    func testNonFiniteValuesAreNotLoadedIntoParameters() throws {
        let url = dir.appendingPathComponent("nan.safetensors")
        try Checkpoint(tensors: [("ok", Tensor(shape: [2], storage: [1, 2])),
                                 ("x", Tensor(shape: [2, 2], storage: [1, .nan, -.infinity, 4]))]).write(to: url)
        let ckpt = try Checkpoint.read(from: url)          // reading is fine: the file is what was saved
        let params = [Parameter(name: "ok", value: Tensor(zeros: [2])), Parameter(name: "x", value: Tensor(zeros: [2, 2]))]
        let text = message { try ckpt.load(into: params) }
        XCTAssertTrue(text.contains("nan.safetensors") && text.contains("tensor 'x' has 2 non-finite values"), text)
        XCTAssertEqual(params[0].value.storage, [0, 0], "a failed load must not assign anything")
        let required = message { _ = try ckpt.requireTensor("x", shape: [2, 2]) }
        XCTAssertTrue(required.contains("tensor 'x' has 2 non-finite values"), required)
        XCTAssertEqual(try ckpt.requireTensor("ok", shape: [2]).storage, [1, 2])
    }

    // MARK: - Temporary files of killed writers

    func testStaleTemporaryFilesOfDeadWritersAreRemoved() throws {
        // A process that has exited: its pid is free (reuse within this test is very unlikely).
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let dead = gone.processIdentifier
        let names = [".ckpt.safetensors.tmp-\(dead)-123",          // killed writer of this target: removed
                     ".ckpt.safetensors.tmp-\(getpid())-456",      // this process (another thread may be writing): kept
                     ".ckpt.safetensors.tmp-1-789",                // pid 1 is alive: kept
                     ".other.safetensors.tmp-\(dead)-1",           // another target: kept
                     ".ckpt.safetensors.tmp-notapid"]              // not our name pattern: kept
        for name in names { try Data(repeating: 7, count: 100).write(to: dir.appendingPathComponent(name)) }
        try Checkpoint(tensors: [("w", Tensor(zeros: [1]))]).write(to: dir.appendingPathComponent("ckpt.safetensors"))
        XCTAssertEqual(try listing(), (["ckpt.safetensors"] + names.dropFirst()).sorted())
    }

    // MARK: - Not a file

    func testDirectoriesAndFIFOsAreNamedNotPermissionErrors() throws {
        let folder = dir.appendingPathComponent("run.safetensors")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        let text = message { _ = try Checkpoint.read(from: folder) }
        XCTAssertTrue(text.contains("run.safetensors: is a directory") && !text.contains("permission"), text)

        let pipe = dir.appendingPathComponent("pipe.safetensors").path
        try makeFIFO(pipe)
        let read = outcome(within: 5, unblocking: pipe) { _ = try Checkpoint.read(from: URL(fileURLWithPath: pipe)) }
        XCTAssertFalse(read.timedOut, "reading a FIFO blocked")
        let fifo = read.error.map { "\($0)" } ?? "nothing thrown"
        XCTAssertTrue(fifo.contains("pipe.safetensors: is a FIFO") && !fifo.contains("permission"), fifo)
    }
}
