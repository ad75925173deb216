// The README's example of using the package from another Swift package (Examples/SampleFromCheckpoint) is
// built with the package; this runs it on a fresh checkpoint and checks its picture.
import XCTest
import Foundation
import CKTensor
import CKConsistency
import CKImageIO

struct ExampleMissing: Error, CustomStringConvertible { let description: String }

final class ExampleTests: XCTestCase {
    /// The example's executable, built beside the test bundle.
    private func example() throws -> URL {
        let bundle = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        var dir = bundle.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("sample-from-checkpoint")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        throw ExampleMissing(description: "sample-from-checkpoint was not built beside \(bundle.path); build all targets first")
    }

    func testExampleSamplesACheckpointToAPNG() throws {
        var config = TrainingConfig(method: .ict)
        config.iterations = 3
        config.batchSize = 16
        config.seed = 2
        let trainer = try Trainer(config: config)
        for k in 0..<3 {
            var rng = trainer.rng(forStep: k)
            var data = SplitMix64(seed: UInt64(k))
            _ = try trainer.trainStep(batch: Tensor.normal(shape: [16, 2], rng: &data) * 0.5, rng: &rng)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("example-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoint = dir.appendingPathComponent("checkpoint.safetensors"), picture = dir.appendingPathComponent("out.png")
        try trainer.checkpoint().write(to: checkpoint)

        let process = Process()
        process.executableURL = try example()
        process.arguments = [checkpoint.path, picture.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(printed.contains("16 samples of mlp-toy"), printed)

        // The same samples drawn here give the same picture.
        let model = try loadTrainedModel(from: checkpoint)
        let samples = try model.sample(SamplingPlan(kind: .consistency, steps: 1), count: 16, seed: 0)
        XCTAssertEqual(try PNG.readBitmap(picture.path), SamplePicture.bitmap(samples, columns: 4))
    }
}
