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
        // Without --class the classes come in turn, sample k of class k mod 2, each class's samples those of
        // `--class NAME` (drawn per class with the same seed); --class none gives the no-class samples.
        let turns = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--method", "heun", "--steps", "2",
                                 "--count", "4", "--out", path("turns.png"), "--npy", path("turns.npy")])
        XCTAssertTrue(turns.contains("all 2 classes in turn"), turns)
        let inTurn = try NPY.read(path("turns.npy")).tensor
        for (label, name) in [(0, "boots"), (1, "sneakers")] {
            _ = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", name, "--count", "2",
                             "--method", "heun", "--steps", "2", "--out", path("two-\(label).png"), "--npy", path("two-\(label).npy")])
            let own = try NPY.read(path("two-\(label).npy")).tensor
            for j in 0..<2 {
                let k = 2 * j + label
                assertClose(Array(inTurn.storage[(k * 64)..<((k + 1) * 64)]), Array(own.storage[(j * 64)..<((j + 1) * 64)]), atol: 1e-5,
                            "sample \(k) is \(name)'s sample \(j)")
            }
        }
        let free = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "none", "--method", "heun",
                                "--steps", "2", "--count", "4", "--out", path("free.png"), "--npy", path("free.npy")])
        XCTAssertTrue(free.contains("--class none: these are the no-class samples"), free)
        XCTAssertNotEqual(try NPY.read(path("free.npy")).tensor.storage, inTurn.storage, "no-class samples are not the classes' samples")
        _ = try succeed(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "1", "--guidance", "3",
                         "--method", "heun", "--steps", "2", "--count", "2", "--out", path("guided.png")])

        try expectError(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "clogs", "--out", path("x.png")],
                        says: "no class 'clogs': use an index from 0 to 1, a name (boots, sneakers) or all")
        try expectError(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "all", "--count", "5",
                         "--out", path("x.png")], says: "set --columns instead of --count")
        try expectError(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--guidance", "2", "--out", path("x.png")],
                        says: "--guidance needs --class")
        try expectError(["sample", "--checkpoint", path("run/checkpoint.safetensors"), "--class", "none", "--guidance", "2",
                         "--out", path("x.png")], says: "--guidance needs --class")
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
