// Checkpoints written before methods became types (commit 404644f) still load, resume, keep their layout,
// and sample to the numbers that version printed. The fixtures hold each old file's exact header and the
// samples; the tensor bytes are rebuilt by formula (Fixtures/legacy/README.md).
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKImageIO
import CKTestSupport

final class LegacyCheckpointTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/legacy")
    static let runs = ["ict-toy", "edm-toy", "ctm-toy", "ict-unetxs", "lct"]

    /// The fill of make_legacy_fixtures.py: values exact in float32, positive where the file needs them.
    static func fillValue(tensor i: Int, element j: Int, name: String) -> Float {
        let h = (UInt64(j) &* 2_654_435_761 &+ UInt64(i + 1) &* 97_531) % (1 << 32)
        let k = Int((h >> 7) % 2001) - 1000
        if name.hasSuffix("latent.std") { return 0.5 + Float(abs(k)) * 0x1p-11 }
        if name.contains(".v.") && (name.hasPrefix("adam.") || name.hasPrefix("radam.")) { return Float(abs(k)) * 0x1p-20 }
        return Float(k) * 0x1p-14
    }

    /// The old file: its header bytes as stored, then the data block by formula. Written to a temporary file.
    static func legacyCheckpoint(_ run: String) throws -> URL {
        let header = try Data(contentsOf: fixtures.appendingPathComponent("\(run).header.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: header) as? [String: Any])
        var entries: [(begin: Int, end: Int, name: String)] = []
        for (name, value) in json where name != "__metadata__" {
            let offsets = try XCTUnwrap((value as? [String: Any])?["data_offsets"] as? [Int], "\(run): \(name)")
            entries.append((offsets[0], offsets[1], name))
        }
        entries.sort { $0.begin < $1.begin }
        XCTAssertFalse(entries.isEmpty, "\(run): no tensors in the header")
        var data = [UInt8](repeating: 0, count: entries.map(\.end).max() ?? 0)
        for (i, e) in entries.enumerated() {
            for j in 0..<((e.end - e.begin) / 4) {
                withUnsafeBytes(of: fillValue(tensor: i, element: j, name: e.name).bitPattern.littleEndian) {
                    for (b, byte) in $0.enumerated() { data[e.begin + 4 * j + b] = byte }
                }
            }
        }
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes += $0 }
        bytes += header + data
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("legacy-\(run)-\(getpid()).safetensors")
        try Data(bytes).write(to: url)
        return url
    }

    func testOldCheckpointsSampleAsTheyDidBefore() throws {
        let cases: [(run: String, expected: String, weights: WeightChoice, plan: SamplingPlan)] = [
            ("ict-toy", "ict-toy.ema-2step", .ema, SamplingPlan(kind: .consistency, steps: 2)),
            ("ict-toy", "ict-toy.online-1step", .online, SamplingPlan(kind: .consistency, steps: 1)),
            ("edm-toy", "edm-toy.ema-heun3", .ema, SamplingPlan(kind: .heun, steps: 3)),
            ("ctm-toy", "ctm-toy.ema-ctm3-g0.5", .ema, SamplingPlan(kind: .ctm, steps: 3, gamma: 0.5)),
            ("ctm-toy", "ctm-toy.ema-heun2", .ema, SamplingPlan(kind: .heun, steps: 2)),
            ("ict-unetxs", "ict-unetxs.ema-2step", .ema, SamplingPlan(kind: .consistency, steps: 2)),
            ("lct", "lct.ema-2step", .ema, SamplingPlan(kind: .consistency, steps: 2)),
        ]
        for c in cases {
            let url = try Self.legacyCheckpoint(c.run)
            defer { try? FileManager.default.removeItem(at: url) }
            let expected = try NPY.read(Self.fixtures.appendingPathComponent("\(c.expected).npy").path).tensor
            let model = try loadTrainedModel(from: url, weights: c.weights)
            let samples = try model.sample(c.plan, count: expected.shape[0], seed: 5)
            XCTAssertEqual(samples.shape, expected.shape, c.expected)
            // Bit for bit on the machine that made them; BLAS kernels of another CPU may move the last bits.
            assertClose(samples.storage, expected.storage, atol: 1e-5, rtol: 1e-4, c.expected)
        }
    }

    func testOldCheckpointsResumeAndTheNewOnesKeepTheirLayout() throws {
        for run in Self.runs {
            let url = try Self.legacyCheckpoint(run)
            defer { try? FileManager.default.removeItem(at: url) }
            let old = try Checkpoint.read(from: url)
            let trainer = try Trainer.restore(from: old, path: url.path)
            XCTAssertEqual(trainer.step, try old.intMetadata("step"), run)
            let new = try trainer.checkpoint()
            let layout = { (c: Checkpoint) in Dictionary(uniqueKeysWithValues: c.tensors.map { ($0.name, $0.tensor.shape) }) }
            XCTAssertEqual(layout(new), layout(old), "\(run): tensor names or shapes changed")
            XCTAssertEqual(Set(new.metadata.keys), Set(old.metadata.keys), "\(run): metadata keys changed")
            XCTAssertEqual(try TrainingConfig.stored(in: new, path: "new"), try TrainingConfig.stored(in: old, path: url.path), run)
            for (name, tensor) in old.tensors {
                XCTAssertEqual(new.tensor(named: name)?.storage, tensor.storage, "\(run): \(name) did not round-trip")
            }
        }
    }
}
