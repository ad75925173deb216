// What every command-line test needs: a temporary folder of its own, the cmkit built beside the tests, a way
// to run it there (with a time limit, so a hang fails instead of blocking the suite), and the check that a
// bad request ends in a clear error.
import XCTest
import Foundation

struct CmkitMissing: Error, CustomStringConvertible { let description: String }

/// What the reader thread collected; read only after the thread finished.
private final class OutputBox: @unchecked Sendable { var data = Data() }

class CLITestCase: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(type(of: self))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// The cmkit built beside the test bundle.
    static func cmkit() throws -> URL {
        var dir = (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("cmkit")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        throw CmkitMissing(description: "cmkit was not built beside the tests; build all targets first")
    }

    struct Outcome { let status: Int32, signalled: Bool, output: String }

    /// Runs `executable` (the built cmkit by default) with `arguments` in the temporary folder, the package's
    /// assets in reach, killing it after `timeout` seconds (a hang fails the test), or as soon as `stopWhen`
    /// holds (checked every 20 ms; for looking at how a long run starts).
    func run(_ arguments: [String], executable: URL? = nil, timeout: Double = 600, stopWhen: (() -> Bool)? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = try executable ?? Self.cmkit()
        process.arguments = arguments
        process.currentDirectoryURL = dir
        var environment = ProcessInfo.processInfo.environment
        environment["CMKIT_ASSETS"] = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("assets").path
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read while it runs: a full pipe would stall the process.
        let output = OutputBox()
        let reader = Thread { output.data = pipe.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let deadline = Date().addingTimeInterval(timeout)
        var stopped = false
        while process.isRunning && Date() < deadline {
            if let stopWhen, stopWhen() { stopped = true; break }
            usleep(20_000)
        }
        let hung = process.isRunning && !stopped
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        while !reader.isFinished { usleep(1_000) }
        let name = process.executableURL!.lastPathComponent
        XCTAssertFalse(hung, "\(name) \(arguments.joined(separator: " ")) hung")
        return Outcome(status: process.terminationStatus, signalled: process.terminationReason == .uncaughtSignal,
                       output: String(decoding: output.data, as: UTF8.self))
    }

    /// Runs and expects a clear error: no crash, a non-zero status, `says` in the message.
    func expectError(_ arguments: [String], says: String, timeout: Double = 600, file: StaticString = #filePath, line: UInt = #line) throws {
        let outcome = try run(arguments, timeout: timeout)
        XCTAssertFalse(outcome.signalled, "cmkit \(arguments.joined(separator: " ")) crashed: \(outcome.output)", file: file, line: line)
        XCTAssertNotEqual(outcome.status, 0, "cmkit \(arguments.joined(separator: " ")) succeeded: \(outcome.output)", file: file, line: line)
        XCTAssertTrue(outcome.output.contains(says), "cmkit \(arguments.joined(separator: " ")): expected '\(says)' in: \(outcome.output)",
                      file: file, line: line)
    }
}
