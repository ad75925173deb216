// `cmkit bench` as a user runs it: one JSON line that says what it timed with, including the process's malloc
// (cmkit links tcmalloc; a build that lost it would be slower without saying so).
import XCTest
import Foundation
import CKTensor

final class BenchCLITests: CLITestCase {
    func testBenchRunsOnTCMallocAndSaysSo() throws {
        let outcome = try run(["bench", "--model", "mlp-toy", "--threads", "1", "--steps", "2", "--warmup", "0"])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let line = try XCTUnwrap(outcome.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }), outcome.output)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(json["allocator"] as? String, "tcmalloc")
        XCTAssertEqual(json["model"] as? String, "mlp-toy")
    }

    func testTheLibraryLeavesTheAllocatorToItsProgram() {
        // This test process links ConsistencyKit's libraries but not cmkit's tcmalloc.
        XCTAssertEqual(MemoryAllocator.current, "glibc")
    }
}
