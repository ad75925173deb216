// The tests train through the library's own loop (the one `cmkit train` runs), in temporary run folders.
import XCTest
import Foundation
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
