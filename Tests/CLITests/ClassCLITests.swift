// Class-conditional runs as a user makes them: `train --classes` on a folder of class subfolders, `sample
// --class`, and a clear error for each way the request can be wrong.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKImageIO
import CKTestSupport

final class ClassCLITests: CLITestCase {
    private func cmkit(_ arguments: [String]) throws -> Outcome { try run(arguments + ["--threads", "1"]) }

    private func succeed(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let outcome = try cmkit(arguments)
        XCTAssertEqual(outcome.status, 0, "cmkit \(arguments.joined(separator: " ")): \(outcome.output)", file: file, line: line)
        return outcome.output
    }

    private func expectError(_ arguments: [String], says: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try super.expectError(arguments + ["--threads", "1"], says: says, file: file, line: line)
    }

    /// folder/boots and folder/sneakers, four 8x8 gray images each.
    private func classFolder() throws -> String {
        var rng = SplitMix64(seed: 3)
        for (name, base) in [("sneakers", Float(0.5)), ("boots", -0.5)] {
            try FileManager.default.createDirectory(atPath: path("folder/\(name)"), withIntermediateDirectories: true)
            for i in 0..<4 {
                let image = Tensor.uniform(shape: [1, 1, 8, 8], low: base - 0.3, high: base + 0.3, rng: &rng)
                try ImageGrid.write(image, to: path("folder/\(name)/\(i).png"), columns: 1, padding: 0)
            }
        }
        return "folder:" + path("folder")
    }

    func testClassRunSamplesEveryClassInRows() throws {
        let data = try classFolder()
        _ = try succeed(["train", "--method", "edm", "--data", data, "--classes", "--model", "unet-xs", "--iters", "3", "--batch", "4",
                         "--out", path("run")])
        let model = try loadTrainedModel(from: URL(fileURLWithPath: path("run/checkpoint.safetensors")))
        XCTAssertEqual(model.classNames, ["boots", "sneakers"])
        XCTAssertEqual(model.config.labelDropout, 0.1)

        let said = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "all", "--columns", "3",
                                "--method", "heun", "--steps", "2", "--out", path("all.png"), "--npy", path("all.npy")])
        XCTAssertTrue(said.contains("all 2 classes"), said)
        let all = try NPY.read(path("all.npy")).tensor
        XCTAssertEqual(all.shape, [6, 1, 8, 8], "one row of --columns samples per class")
        let picture = try PNG.read(path("all.png"))
        XCTAssertGreaterThan(picture.shape[2], 3 * 10, "the row labels sit left of the tiles")

        // Each row is `sample --class` of that class: the same noise down each column.
        for (label, name) in [(0, "boots"), (1, "sneak")] {
            _ = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", name, "--count", "3",
                             "--method", "heun", "--steps", "2", "--out", path("\(label).png"), "--npy", path("\(label).npy")])
            let row = try NPY.read(path("\(label).npy")).tensor
            assertClose(row.storage, Array(all.storage[(label * 192)..<((label + 1) * 192)]), atol: 1e-5, "class \(name)")
        }
        let free = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--method", "heun", "--steps", "2",
                                "--count", "2", "--out", path("free.png")])
        XCTAssertTrue(free.contains("no --class was given: these are its no-class samples"), free)
        _ = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "1", "--guidance", "3",
                         "--method", "heun", "--steps", "2", "--count", "2", "--out", path("guided.png")])

        try expectError(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "clogs", "--out", path("x.png")],
                        says: "no class 'clogs': use an index from 0 to 1, a name (boots, sneakers) or all")
        try expectError(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "all", "--count", "5",
                         "--out", path("x.png")], says: "set --columns instead of --count")
        try expectError(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--guidance", "2", "--out", path("x.png")],
                        says: "--guidance needs --class")
        try expectError(["train", "--resume", path("run"), "--classes"], says: "--classes cannot change")

        // Tuning that distills the guided sampler (on the start model's network, unet-xs, without --model),
        // and the same without classes.
        _ = try succeed(["train", "--method", "ect", "--init", path("run/checkpoint.safetensors"), "--data", data, "--classes",
                         "--ect-guidance", "2", "--iters", "2", "--batch", "4", "--out", path("guided")])
        let tuned = try Checkpoint.read(from: URL(fileURLWithPath: path("guided/checkpoint.safetensors")))
        XCTAssertNotNil(tuned.tensor(named: "teacher.cemb.weight"), "the guided run keeps its teacher")
        try expectError(["train", "--method", "ect", "--init", path("run/checkpoint.safetensors"), "--data", data,
                         "--ect-guidance", "2", "--iters", "2", "--out", path("unguided")], says: "to train on them as classes add --classes")
        try expectError(["train", "--method", "ect", "--init", path("run/checkpoint.safetensors"), "--data", "shapes", "--model", "unet-xs",
                         "--ect-guidance", "2", "--iters", "2", "--out", path("unguided")], says: "needs a class-conditional run (--classes)")
        try expectError(["train", "--method", "ect", "--init", path("run/checkpoint.safetensors"), "--data", data, "--classes",
                         "--ect-guidance", "-1", "--iters", "2", "--out", path("unguided")], says: "--ect-guidance must be a number of at least 0")
    }

    func testClassRequestsThatCannotWorkAreExplained() throws {
        try expectError(["train", "--data", "toy:checkerboard", "--classes", "--iters", "2", "--out", path("toy")],
                        says: "has no class labels")
        try expectError(["train", "--data", "toy:checkerboard", "--label-dropout", "0.2", "--iters", "2", "--out", path("toy")],
                        says: "add --classes")
        _ = try succeed(["train", "--data", "toy:checkerboard", "--iters", "2", "--out", path("plain")])
        try expectError(["sample", "--checkpoint", path("plain/checkpoint.safetensors"), "--class", "0", "--out", path("x.png")],
                        says: "is not class-conditional")
        let data = try classFolder()
        try FileManager.default.copyItem(atPath: path("folder/boots/0.png"), toPath: path("folder/stray.png"))
        try expectError(["train", "--method", "edm", "--data", data, "--classes", "--model", "unet-xs", "--iters", "2", "--batch", "4",
                         "--out", path("run")], says: "move each into its class's subfolder")
    }
}
