// The tests train through the library's own loop (the one `cmkit train` runs), in temporary run folders.
import XCTest
import Foundation
import CKTensor
import CKConsistency
import CKDatasets
import CKTraining

/// A fresh, empty run folder under the temporary directory.
func temporaryRun(_ name: String) throws -> RunDirectory {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ck-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try? FileManager.default.removeItem(at: url)
    return RunDirectory(url)
}

/// Trains `trainer` to iteration `end` with `TrainingLoop` (checkpoint only at the end), in `run` or a
/// temporary folder that is removed afterwards.
func train(_ trainer: Trainer, until end: Int, in run: RunDirectory? = nil, data: (any Dataset)? = nil) throws {
    let directory = try run ?? temporaryRun("train")
    defer { if run == nil { try? FileManager.default.removeItem(at: directory.url) } }
    let loop = TrainingLoop(trainer: trainer, directory: directory)
    loop.saveEvery = 0
    loop.data = data
    try loop.run(until: end)
}

/// Two labelled classes of 2-D points: class 0 around (-1, 0), class 1 around (+1, 0). The sign of x tells them apart.
func twoBlobs(count: Int = 1024, seed: UInt64 = 1, centre: Float = 1, spread: Float = 0.15) -> TensorDataset {
    var rng = SplitMix64(seed: seed)
    let labels = (0..<count).map { $0 % 2 }
    let noise = Tensor.normal(shape: [count, 2], rng: &rng)
    let points = Tensor(shape: [count, 2], storage: (0..<count).flatMap { i -> [Float] in
        [(labels[i] == 0 ? -centre : centre) + spread * noise.storage[2 * i], spread * noise.storage[2 * i + 1]]
    })
    return TensorDataset(points, labels: labels, classNames: ["left", "right"])
}

/// A class-conditional `mlp-toy` run on two classes ("left", "right"), batch 64, lr 1e-3.
func classToyConfig(_ method: MethodName, iterations: Int) -> TrainingConfig {
    var c = TrainingConfig(method: method)
    c.model = .mlpToy
    c.data = "toy:8gaussians"
    c.sampleShape = [2]
    c.iterations = iterations
    c.batchSize = 64
    c.learningRate = 1e-3
    c.emaDecay = 0.9
    c.seed = 3
    c.classNames = ["left", "right"]
    return c
}

final class LogFileTests: XCTestCase {
    func testAFullDiskIsAnErrorNamingTheFile() throws {
        // /dev/full takes the open and refuses every write with ENOSPC, as a full disk does.
        let log = try LogFile(appendingTo: URL(fileURLWithPath: "/dev/full"))
        XCTAssertThrowsError(try log.append("1,0.5,11,0.1\n")) { error in
            XCTAssertTrue("\(error)".contains("cannot write /dev/full"), "\(error)")
            XCTAssertTrue("\(error)".lowercased().contains("space"), "\(error)")
        }
    }
}
