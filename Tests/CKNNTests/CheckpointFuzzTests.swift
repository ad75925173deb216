// Seeded byte-mutation fuzzing of the checkpoint reader: every variant of a valid small checkpoint either
// reads (consistently) or throws CheckpointError; never traps (release builds use -Ounchecked).
import XCTest
import Foundation
import CKTensor
import CKTestSupport
@testable import CKNN

final class CheckpointFuzzTests: XCTestCase {
    func testMutatedCheckpointsReadOrThrow() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ck-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("variant.safetensors")

        try Checkpoint(tensors: [("conv.weight", Tensor(shape: [2, 1, 2, 2], storage: (0..<8).map(Float.init))),
                                 ("conv.bias", Tensor(shape: [2], storage: [0.5, -0.5])), ("step", Tensor(scalar: 3))],
                       metadata: ["config": #"{"model":"unet-s","lr":0.0001}"#, "step": "12"]).write(to: url)
        let written = [UInt8](try Data(contentsOf: url))
        // Without a checksum (as older files): data mutations reach the loader.
        var header = Array(#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[],"data_offsets":[16,20]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let old = (0..<8).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) } + header + (0..<20).map { UInt8($0 * 13) }
        let seeds = [written, old]

        var m = Mutator(seed: 4)
        var (ok, refused) = (0, 0)
        let start = Date()
        let count = 400
        for k in 0..<count {
            let seed = seeds[k % 2]
            let headerLength = (0..<8).reduce(0) { $0 | Int(seed[$1]) << (8 * $1) }
            var bytes: [UInt8]
            if k % 3 == 0 {
                // A number in the JSON header (shape, offsets, header length digits) set to an extreme, length fixed.
                let (b, delta) = m.replacingNumber(in: seed, within: 8..<(8 + headerLength))
                bytes = b
                let fixed = UInt64(headerLength + delta)
                for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: fixed >> (8 * UInt64(i))) }
            } else {
                bytes = m.mutate(seed, hot: 0..<(8 + headerLength))
            }
            try Data(bytes).write(to: url)
            do {
                let c = try Checkpoint.read(from: url)
                for (name, t) in c.tensors { XCTAssertEqual(t.shape.reduce(1, *), t.storage.count, name) }
                let params = c.tensors.map { Parameter(name: $0.name, value: Tensor(zeros: $0.tensor.shape)) }
                do { try c.load(into: params) } catch let e as CheckpointError {
                    guard case .nonFinite = e.kind else { return XCTFail("variant \(k): load failed: \(e)") }
                }
                ok += 1
            } catch is CheckpointError { refused += 1 } catch {
                XCTFail("variant \(k): unexpected \(type(of: error)): \(error)")
            }
        }
        print("fuzz checkpoint: \(count) variants, \(ok) read, \(refused) refused, " + String(format: "%.2f s", Date().timeIntervalSince(start)))
    }
}
