// What a hostile or careless user tried against `cmkit` (the hardening issue), one row each: every bad input
// ends with a clear error (exit status 1 or 64, the message naming the problem), never a crash, a hang or a
// silent success. The rows run the built cmkit in a temporary folder.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKTraining

final class CLIHardeningTests: CLITestCase {
    /// Bad requests end within two minutes, or they hang.
    private func cmkit(_ arguments: [String], timeout: Double = 120) throws -> Outcome { try run(arguments, timeout: timeout) }

    /// A small toy checkpoint written by the trainer, its config edited by `edit`.
    private func toyCheckpoint(_ name: String, iterations: Int = 3, edit: (inout [String: Any]) -> Void = { _ in },
                               step: String? = nil) throws -> String {
        var config = TrainingConfig(method: .ict)
        config.iterations = iterations
        config.batchSize = 8
        let trainer = try Trainer(config: config)
        var rng = trainer.rng(forStep: 0)
        _ = try trainer.trainStep(batch: Tensor.normal(shape: [8, 2], rng: &rng) * 0.5, rng: &rng)
        var checkpoint = try trainer.checkpoint()
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(checkpoint.metadata["config"]!.utf8)) as? [String: Any])
        edit(&json)
        checkpoint.metadata["config"] = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
        if let step { checkpoint.metadata["step"] = step }
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try checkpoint.write(to: url.appendingPathComponent("checkpoint.safetensors"))
        return url.appendingPathComponent("checkpoint.safetensors").path
    }

    private func expectError(_ arguments: [String], says: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try super.expectError(arguments, says: says, timeout: 120, file: file, line: line)
    }

    func testEditedCheckpointMetadataIsRefusedBeforeUse() throws {
        let rows: [(name: String, edit: (inout [String: Any]) -> Void, step: String?, says: String)] = [
            ("shape-18", { $0["model"] = "unet-xs"; $0["sampleShape"] = [3, 18, 18] }, nil, "side is a multiple of 4"),
            ("shape-0", { $0["model"] = "unet-xs"; $0["sampleShape"] = [3, 0, 0] }, nil, "sampleShape"),
            ("shape-34", { $0["model"] = "unet-xs"; $0["sampleShape"] = [3, 34, 32] }, nil, "square images"),
            ("batch-0", { $0["batchSize"] = 0 }, nil, "batchSize is 0"),
            ("batch-neg", { $0["batchSize"] = -3 }, nil, "batchSize is -3"),
            ("s0-0", { $0["s0"] = 0 }, nil, "s0 is 0"),
            ("s0-neg", { $0["s0"] = -1 }, nil, "s0 is -1"),
            ("lr-neg", { $0["learningRate"] = -1 }, nil, "learningRate is -1"),
            ("ema-2", { $0["emaDecay"] = 2 }, nil, "emaDecay is 2"),
            ("method", { $0["method"] = "ddpm" }, nil, "method 'ddpm' is not known; valid values: ict, lct, edm, ctm, ect"),
            ("step-neg", { _ in }, "-5", "step is -5"),
        ]
        for row in rows {
            let checkpoint = try toyCheckpoint(row.name, edit: row.edit, step: row.step)
            try expectError(["sample", "--checkpoint", checkpoint, "--out", path("\(row.name).png"), "--threads", "1"], says: row.says)
            try expectError(["train", "--resume", path(row.name), "--threads", "1"], says: row.says)
        }
    }

    func testBadOptionsSayWhatIsWrong() throws {
        let rows: [(args: [String], says: String)] = [
            (["train", "--out", "r", "--log-every", "0"], "--log-every must be at least 1"),
            (["train", "--out", "r", "--s1=-5"], "--s1 must be from 10"),
            (["train", "--out", "r", "--s1", "0"], "--s1 must be from 10"),
            (["train", "--out", "r", "--batch", "-4"], "--batch must be from 1"),
            (["train", "--out", "r", "--lr", "-1"], "--lr must be a positive number"),
            (["train", "--out", "r", "--max-grad-norm", "0"], "--max-grad-norm must be a positive number"),
            (["train", "--out", "r", "--max-grad-norm", "-1"], "--max-grad-norm must be a positive number"),
            (["train", "--out", "r", "--max-grad-norm", "nan"], "--max-grad-norm must be a positive number"),
            (["train", "--out", "r", "--method", "ddpm"], "'ict', 'lct', 'edm', 'ctm' or 'ect'"),
            (["train", "--out", "r", "--optimizer", "sgd"], "'adam' and 'radam'"),
            (["train", "--out", "r", "--replanned", "5:40"], "give it with --iters"),
            (["train", "--out", "r", "--time", "1m", "--replanned", "5:40"], "give it with --iters"),
            (["train", "--out", "r", "--iters", "50", "--replanned", "5"], "is invalid for '--replanned <step:count>'"),
            (["train", "--out", "r", "--iters", "50", "--replanned", "0:40"], "is invalid for '--replanned <step:count>'"),
            (["train", "--out", "r", "--iters", "50", "--replanned", "60:70"], "the steps must rise and lie inside the --iters 50"),
            (["train", "--out", "r", "--iters", "50", "--replanned", "20:30", "--replanned", "10:40"], "--replanned 10:40: the steps must rise"),
            (["train", "--out", "r", "--iters", "50", "--replanned", "20:10"], "the count must be at least the step"),
            (["train", "--out", "r", "--teacher", "x.safetensors"], "--teacher is for --method ctm"),
            (["train", "--out", "r", "--method", "ctm"], "--method ctm needs --teacher"),
            (["train", "--out", "/etc/passwd"], "exists and is not a folder"),
            (["sample", "--checkpoint", "none.safetensors", "--out", "x.png", "--count", "-3"], "--count must be at least 1"),
            (["bss", "--data", "shapes", "--count", "100000000", "--out", "b.png"], "--count must be at most 4096"),
            (["score", "missing.npy", "--data", "fashion-mnist"], "no such file"),
        ]
        for row in rows { try expectError(row.args + ["--threads", "1"], says: row.says) }
    }

    func testOutputsNeverDestroyInputs() throws {
        let checkpoint = try toyCheckpoint("run")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        try expectError(["sample", "--checkpoint", checkpoint, "--out", checkpoint], says: "is the file given as --checkpoint")
        try expectError(["sample", "--checkpoint", checkpoint, "--out", path("a.png"), "--npy", checkpoint], says: "is the file given as --checkpoint")
        try expectError(["sample", "--checkpoint", checkpoint, "--out", path("a.png"), "--csv", checkpoint], says: "is the file given as --checkpoint")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), bytes, "the checkpoint was changed")
        // A folder that holds a run is not trained into again without --resume or --force.
        try expectError(["train", "--out", path("run"), "--iters", "2"], says: "already holds a run")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), bytes, "the run was replaced")
        // Resume means resume: options that would change the run are refused.
        try expectError(["train", "--resume", path("run"), "--lr", "1e-3"], says: "--lr cannot change")
        try expectError(["train", "--resume", path("run"), "--iters", "50"], says: "--iters cannot change")
        // One run per folder: a folder another process trains in is refused.
        let lock = try RunDirectory(path: path("busy")).lock()
        defer { lock.release() }
        try expectError(["train", "--out", path("busy"), "--iters", "2"], says: "is training in")
    }

    func testAbsurdRequestsAreRefusedWithTheSizeTheyNeed() throws {
        let checkpoint = try toyCheckpoint("toy")
        try expectError(["sample", "--checkpoint", checkpoint, "--count", "100000000", "--out", path("x.png")], says: "is more than the 16777216")
        var config = TrainingConfig(method: .ict)
        config.model = .unetXS
        config.sampleShape = [1, 28, 28]
        config.data = "fashion-mnist"
        let images = dir.appendingPathComponent("images.safetensors")
        try Trainer(config: config).checkpoint().write(to: images)
        try expectError(["sample", "--checkpoint", images.path, "--count", "16000000", "--out", path("x.png")], says: "would need 46.7 GiB")
    }

    func testLatentStatsRefusesImagesOfAnotherSize() throws {
        // A tiny autoencoder for 28x28 gray images, asked to encode 3x32x32 shapes.
        let autoencoder = path("ae.safetensors")
        let outcome = try cmkit(["train-autoencoder", "--data", "fashion-mnist", "--latent-channels", "1", "--width", "8", "--iters", "1",
                                 "--batch", "2", "--out", autoencoder, "--threads", "1"])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        try expectError(["latent-stats", "--autoencoder", autoencoder, "--data", "shapes", "--out", path("h.png"), "--threads", "1"],
                        says: "the autoencoder encodes images [1, 28, 28], but the data has [3, 32, 32]")
    }
}
