// Checkpoints: safetensors byte layout, round trips, validation of corrupt files, loading, atomic writes.
import XCTest
import Foundation
import CKTensor
import CKTestSupport
@testable import CKNN

final class CheckpointTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ck-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }

    /// Writes `bytes` as a file and returns its URL.
    func file(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    /// A safetensors file built by hand: length prefix, header text padded with spaces to 8, data bytes.
    func handMade(header: String, data: [UInt8]) -> [UInt8] {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        let n = UInt64(h.count)
        return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) } + h + data
    }

    /// The error thrown by `body`, failing if nothing (or something else) is thrown.
    func checkpointError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> CheckpointError? {
        do { try body() } catch let e as CheckpointError { return e } catch {
            XCTFail("expected CheckpointError, got \(error)", file: file, line: line); return nil
        }
        XCTFail("expected CheckpointError, nothing thrown", file: file, line: line)
        return nil
    }

    // MARK: - Round trip and layout

    func testRoundTripKeepsNamesOrderShapesValuesAndMetadata() throws {
        var rng = SplitMix64(seed: 7)
        let tensors: [(name: String, tensor: Tensor)] = [
            ("z.last.weight", Tensor.normal(shape: [2, 3], rng: &rng)),
            ("a.bias", Tensor(shape: [4], storage: [0, -0.0, .infinity, Float(bitPattern: 1)])),   // signed zero, inf, subnormal
            ("scalar", Tensor(scalar: 3.25)),
            ("empty", Tensor(zeros: [0, 5])),
            ("quote\"back\\slash.ünï", Tensor.normal(shape: [1, 2, 1, 3], rng: &rng)),
        ]
        let metadata = ["config": #"{"model": "unet-s", "lr": 0.0002}"#, "step": "1200", "note": "line\nbreak\ttab é \u{1}"]
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try Checkpoint(tensors: tensors, metadata: metadata).write(to: url)

        let back = try Checkpoint.read(from: url)
        XCTAssertEqual(back.tensors.map(\.name), tensors.map(\.name))
        XCTAssertEqual(back.metadata, metadata)
        for (got, want) in zip(back.tensors, tensors) {
            XCTAssertEqual(got.tensor.shape, want.tensor.shape, got.name)
            XCTAssertEqual(got.tensor.storage.map(\.bitPattern), want.tensor.storage.map(\.bitPattern), got.name)
        }
    }

    func testByteLayoutOfATinyFile() throws {
        let url = dir.appendingPathComponent("tiny.safetensors")
        try Checkpoint(tensors: [("w", Tensor(shape: [2], storage: [1.0, -2.5])),
                                 ("b", Tensor(shape: [1, 1], storage: [0.5]))],
                       metadata: ["k": "v"]).write(to: url)
        let bytes = [UInt8](try Data(contentsOf: url))

        // 8-byte little-endian header length N, a multiple of 8.
        XCTAssertGreaterThanOrEqual(bytes.count, 8)
        let n = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        XCTAssertEqual(n % 8, 0, "header length \(n) is not a multiple of 8")
        // Data: 2 + 1 floats = 12 bytes after the header.
        XCTAssertEqual(bytes.count, 8 + n + 12)

        // Header: JSON object, then only spaces (fewer than 8 of them).
        let header = Array(bytes[8..<(8 + n)])
        let closing = try XCTUnwrap(header.lastIndex(of: UInt8(ascii: "}")))
        XCTAssertEqual(header.first, UInt8(ascii: "{"))
        XCTAssertTrue(header[(closing + 1)...].allSatisfy { $0 == 0x20 })
        XCTAssertLessThan(header.count - (closing + 1), 8)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(header)) as? [String: Any])
        XCTAssertEqual(Set(json.keys), ["__metadata__", "w", "b"])
        // data_checksum: zlib.crc32 of the 12 data bytes below (Python: '%08x' % zlib.crc32(data)).
        XCTAssertEqual(json["__metadata__"] as? [String: String], ["data_checksum": "crc32:348700bd", "k": "v"])
        let w = try XCTUnwrap(json["w"] as? [String: Any]), b = try XCTUnwrap(json["b"] as? [String: Any])
        XCTAssertEqual(w["dtype"] as? String, "F32")
        XCTAssertEqual(w["shape"] as? [Int], [2])
        XCTAssertEqual(w["data_offsets"] as? [Int], [0, 8])            // 2 floats * 4 bytes, first
        XCTAssertEqual(b["dtype"] as? String, "F32")
        XCTAssertEqual(b["shape"] as? [Int], [1, 1])
        XCTAssertEqual(b["data_offsets"] as? [Int], [8, 12])           // right after w

        // IEEE-754 little-endian: 1.0 = 0x3F800000, -2.5 = 0xC0200000, 0.5 = 0x3F000000.
        XCTAssertEqual(Array(bytes[(8 + n)...]), [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0, 0x00, 0x00, 0x00, 0x3F])
    }

    func testReadsAHandMadeFileWithAnyKeyOrder() throws {
        // Tensors listed before the metadata and not in offset order; data order is b then a.
        let header = #"{"a":{"data_offsets":[4,12],"shape":[2],"dtype":"F32"},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"__metadata__":{"x":"1"}}"#
        let data: [UInt8] = [0x00, 0x00, 0x40, 0x40,   // 3.0
                             0x00, 0x00, 0x80, 0xBF,   // -1.0
                             0x00, 0x00, 0x00, 0x00]   // 0.0
        let ckpt = try Checkpoint.read(from: try file("hand.safetensors", handMade(header: header, data: data)))
        XCTAssertEqual(ckpt.tensors.map(\.name), ["b", "a"])
        XCTAssertEqual(ckpt.tensors[0].tensor.shape, [])
        XCTAssertEqual(ckpt.tensors[0].tensor.storage, [3])
        XCTAssertEqual(ckpt.tensors[1].tensor.storage, [-1, 0])
        XCTAssertEqual(ckpt.metadata, ["x": "1"])
        // No __metadata__ at all is valid too.
        let bare = try Checkpoint.read(from: try file("bare.safetensors",
            handMade(header: #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0x40, 0x40])))
        XCTAssertEqual(bare.metadata, [:])
        XCTAssertEqual(bare.tensors.first?.tensor.storage, [3])
    }

    // MARK: - Corrupt files

    func testCorruptFilesThrowTheRightErrors() throws {
        let missing = dir.appendingPathComponent("nope.safetensors")
        XCTAssertEqual(checkpointError { _ = try Checkpoint.read(from: missing) }?.kind, .fileMissing)

        let short = try file("short.safetensors", [1, 2, 3, 4, 5])
        XCTAssertEqual(checkpointError { _ = try Checkpoint.read(from: short) }?.kind, .tooShort(bytes: 5))

        let beyond = try file("beyond.safetensors", [0xE8, 0x03, 0, 0, 0, 0, 0, 0] + Array(repeating: 0x20, count: 12))
        XCTAssertEqual(checkpointError { _ = try Checkpoint.read(from: beyond) }?.kind,
                       .headerBeyondFile(headerLength: 1000, fileLength: 20))
        let huge = try file("huge.safetensors", Array(repeating: 0xFF, count: 16))   // header length 2^64 - 1
        XCTAssertEqual(checkpointError { _ = try Checkpoint.read(from: huge) }?.kind,
                       .headerBeyondFile(headerLength: UInt64.max, fileLength: 16))

        for garbage in ["not json at all", "{\"a\": [1, 2", "[1, 2, 3]", "{\"a\": 1} trailing"] {
            let url = try file("garbage.safetensors", handMade(header: garbage, data: []))
            guard case .headerNotJSON = checkpointError({ _ = try Checkpoint.read(from: url) })?.kind else {
                XCTFail("header \(garbage) was not reported as not JSON"); continue
            }
        }

        let f16 = try file("f16.safetensors", handMade(header: #"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        let f16Error = checkpointError { _ = try Checkpoint.read(from: f16) }
        XCTAssertEqual(f16Error?.kind, .unsupportedDType(tensor: "w", dtype: "F16"))
        XCTAssertTrue(f16Error?.description.contains("'w' has dtype F16") ?? false, f16Error?.description ?? "")

        func entryError(_ header: String, data: [UInt8]) throws -> CheckpointError.Kind? {
            let url = try file("entry.safetensors", handMade(header: header, data: data))
            return checkpointError { _ = try Checkpoint.read(from: url) }?.kind
        }
        // Shape and offsets disagree: 3 floats need 12 bytes, the offsets give 8.
        guard case .badTensorEntry(tensor: "w", _) = try entryError(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)) else { return XCTFail("shape/offsets") }
        // Offsets run past the data.
        guard case .badLayout = try entryError(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 8)) else { return XCTFail("past end") }
        // Offsets far out of range (would overflow a naive add).
        guard case .badLayout = try entryError(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775800,9223372036854775804]}}"#, data: [0, 0, 0, 0]) else { return XCTFail("huge offsets") }
        // Negative, reversed, fractional, boolean or overflowing numbers; missing fields.
        for bad in [#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#,
                    #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
                    #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#,
                    #"{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#,
                    #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                    #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#,
                    #"{"w":{"dtype":"F32","shape":[1]}}"#,
                    #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#,
                    #"{"w":[1,2]}"#] {
            guard case .badTensorEntry(tensor: "w", _) = try entryError(bad, data: [0, 0, 0, 0]) else { XCTFail(bad); continue }
        }
        // A gap between tensors, overlapping tensors, unclaimed trailing bytes, non-string metadata.
        guard case .badLayout = try entryError(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: Array(repeating: 0, count: 12)) else { return XCTFail("gap") }
        guard case .badLayout = try entryError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Array(repeating: 0, count: 8)) else { return XCTFail("overlap") }
        guard case .badLayout = try entryError(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 8)) else { return XCTFail("trailing") }
        guard case .badLayout = try entryError(#"{"__metadata__":{"step":3},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]) else { return XCTFail("metadata value not a string") }
    }

    func testEveryTruncationAndByteFlipThrowsWithoutCrashing() throws {
        let url = dir.appendingPathComponent("good.safetensors")
        try Checkpoint(tensors: [("a", Tensor(shape: [2, 2], storage: [1, 2, 3, 4])), ("b", Tensor(scalar: 5))],
                       metadata: ["step": "3"]).write(to: url)
        let good = [UInt8](try Data(contentsOf: url))
        for length in 0..<good.count {
            let cut = try file("cut.safetensors", Array(good[..<length]))
            XCTAssertNotNil(checkpointError { _ = try Checkpoint.read(from: cut) }, "truncated to \(length) bytes")
        }
        // Flipping header bytes must either still parse or throw, never trap.
        var rng = SplitMix64(seed: 3)
        for _ in 0..<300 {
            var bytes = good
            let i = Int(rng.next() % UInt64(min(bytes.count, 8 + 120)))
            bytes[i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            let url = try file("flip.safetensors", bytes)
            do { _ = try Checkpoint.read(from: url) } catch is CheckpointError {} catch { XCTFail("\(error)") }
        }
    }

    func testErrorMessagesNameTheFileAndTheProblem() throws {
        let url = try file("short.safetensors", [1, 2, 3])
        let e = checkpointError { _ = try Checkpoint.read(from: url) }
        let message = e?.errorDescription ?? ""
        XCTAssertTrue(message.hasPrefix("checkpoint \(url.path): "), message)
        XCTAssertTrue(message.contains("3 bytes"), message)
        XCTAssertEqual(e.map { "\($0)" }, message)
    }

    // MARK: - Loading into parameters

    func testLoadAssignsByPrefixedNameAndNamesTheFirstMismatch() throws {
        let params = [Parameter(name: "conv.weight", value: Tensor(zeros: [2, 2])),
                      Parameter(name: "conv.bias", value: Tensor(zeros: [2])),
                      Parameter(name: "out.weight", value: Tensor(zeros: [1, 2]))]
        let url = dir.appendingPathComponent("ckpt.safetensors")

        // Good file: values land in the right parameters, extra tensors are ignored.
        try Checkpoint(tensors: [("net.out.weight", Tensor(shape: [1, 2], storage: [7, 8])),
                                 ("adam.m.conv.bias", Tensor(zeros: [2])),
                                 ("net.conv.weight", Tensor(shape: [2, 2], storage: [1, 2, 3, 4])),
                                 ("net.conv.bias", Tensor(shape: [2], storage: [5, 6]))]).write(to: url)
        try Checkpoint.read(from: url).load(into: params, prefix: "net.")
        XCTAssertEqual(params.map(\.value.storage), [[1, 2, 3, 4], [5, 6], [7, 8]])
        XCTAssertTrue(params.allSatisfy(\.value.requiresGradient), "loaded parameters stay graph leaves")

        // conv.bias missing and out.weight misshapen: the error names conv.bias, and nothing is assigned.
        for p in params { p.assign(Tensor(zeros: p.shape)) }
        try Checkpoint(tensors: [("conv.weight", Tensor(repeating: 9, shape: [2, 2])), ("out.weight", Tensor(zeros: [2, 1]))]).write(to: url)
        let missing = checkpointError { try Checkpoint.read(from: url).load(into: params, model: "unet-s") }
        XCTAssertEqual(missing?.kind, .missingTensor(name: "conv.bias", hint: "was it saved from unet-s?"))
        XCTAssertEqual(missing?.description, "checkpoint \(url.path): no tensor 'conv.bias'; was it saved from unet-s?")
        XCTAssertEqual(params[0].value.storage, [0, 0, 0, 0], "a failed load must not assign anything")

        // conv.bias misshapen before out.weight goes missing: the error gives both shapes.
        try Checkpoint(tensors: [("conv.weight", Tensor(repeating: 9, shape: [2, 2])), ("conv.bias", Tensor(zeros: [3]))]).write(to: url)
        let shape = checkpointError { try Checkpoint.read(from: url).load(into: params) }
        XCTAssertEqual(shape?.kind, .shapeMismatch(name: "conv.bias", expected: [2], found: [3]))
        XCTAssertTrue(shape?.description.contains("shape [3] but the model expects [2]") ?? false, shape?.description ?? "")
        XCTAssertEqual(params[0].value.storage, [0, 0, 0, 0], "a failed load must not assign anything")
    }

    // MARK: - Atomic write

    func testWriteReplacesAnExistingFileAndLeavesNoTempFile() throws {
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try Data("old contents that are not a checkpoint".utf8).write(to: url)
        try Checkpoint(tensors: [("w", Tensor(shape: [3], storage: [1, 2, 3]))]).write(to: url)
        XCTAssertEqual(try listing(), ["ckpt.safetensors"])
        XCTAssertEqual(try Checkpoint.read(from: url).tensors.first?.tensor.storage, [1, 2, 3])

        try Checkpoint(tensors: [("w", Tensor(shape: [1], storage: [4]))]).write(to: url)
        XCTAssertEqual(try listing(), ["ckpt.safetensors"])
        XCTAssertEqual(try Checkpoint.read(from: url).tensors.first?.tensor.storage, [4])
    }

    func testFailedWriteLeavesNoTempFile() throws {
        // The target is a directory: refused as such, and no temp file is left.
        let url = dir.appendingPathComponent("taken.safetensors")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        XCTAssertEqual(checkpointError({ try Checkpoint(tensors: [("w", Tensor(zeros: [2]))]).write(to: url) })?.kind,
                       .notAFile(what: "is a directory, not a file"))
        XCTAssertEqual(try listing(), ["taken.safetensors"])
        // The directory does not exist: creating the temp file fails, and the message says where.
        let nowhere = dir.appendingPathComponent("no/such/dir/ckpt.safetensors")
        let failed = checkpointError { try Checkpoint(tensors: [("w", Tensor(zeros: [2]))]).write(to: nowhere) }
        guard case .writeFailed = failed?.kind else { return XCTFail("writing into a missing directory should fail") }
        XCTAssertEqual(try listing(), ["taken.safetensors"])

        let dupURL = dir.appendingPathComponent("dup.safetensors")
        let dup = checkpointError { try Checkpoint(tensors: [("w", Tensor(zeros: [1])), ("w", Tensor(zeros: [1]))]).write(to: dupURL) }
        XCTAssertEqual(dup?.kind, .duplicateName("w"))
        XCTAssertEqual(try listing(), ["taken.safetensors"])
    }

    // MARK: - Typed metadata

    func testTypedMetadataRoundTripsThroughAFile() throws {
        var rng = SplitMix64(seed: 42)
        _ = rng.next()
        var ckpt = Checkpoint()
        ckpt.setMetadata("step", 123_456)
        ckpt.setMetadata("lr", 0.1)
        ckpt.setMetadata("tiny", 1e-300)
        ckpt.setMetadata("pi", Double.pi)
        ckpt.setMetadata("big", UInt64.max)
        ckpt.setRNG(rng)
        let url = dir.appendingPathComponent("meta.safetensors")
        try ckpt.write(to: url)

        let back = try Checkpoint.read(from: url)
        XCTAssertEqual(try back.intMetadata("step"), 123_456)
        XCTAssertEqual(try back.doubleMetadata("lr"), 0.1)
        XCTAssertEqual(try back.doubleMetadata("tiny"), 1e-300)
        XCTAssertEqual(try back.doubleMetadata("pi"), Double.pi)
        XCTAssertEqual(try back.uint64Metadata("big"), UInt64.max)
        var restored = try back.rng()
        XCTAssertEqual((0..<5).map { _ in restored.next() }, (0..<5).map { _ in rng.next() })

        XCTAssertEqual(checkpointError { _ = try back.intMetadata("absent") }?.kind, .missingMetadata(key: "absent"))
        XCTAssertEqual(checkpointError { _ = try back.intMetadata("lr") }?.kind, .badMetadata(key: "lr", value: "0.1", type: "Int"))
    }
}
