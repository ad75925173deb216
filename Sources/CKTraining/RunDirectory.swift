// The files of a training run in one folder: checkpoint, CSV log, evaluation log, previews, loss plot; the
// folder's lock (one run per folder) and the checks that keep a new run from mixing with an old one.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum RunDirectoryError: Error, CustomStringConvertible, Equatable {
    /// The path exists and is not a folder.
    case notAFolder(path: String)
    /// The folder cannot be made (permissions, a read-only file system, ...).
    case cannotCreate(path: String, reason: String)
    /// Another process is training in this folder.
    case busy(path: String, pid: String)
    /// The folder already holds a run (a checkpoint or a log).
    case holdsARun(path: String, files: [String])
    /// Appending to a log failed (a full disk, a removed file).
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notAFolder(path): return "\(path) exists and is not a folder"
        case let .cannotCreate(path, reason): return "cannot create the folder \(path): \(reason)"
        case let .busy(path, pid): return "another process (pid \(pid)) is training in \(path); one run per folder"
        case let .holdsARun(path, files): return "\(path) already holds a run (\(files.joined(separator: ", ")))"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason); the last checkpoint is kept as it was"
        }
    }
}

public struct RunDirectory: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }
    public init(path: String) { url = URL(fileURLWithPath: path) }

    public var checkpoint: URL { url.appendingPathComponent("checkpoint.safetensors") }
    /// iteration,loss,N,seconds per iteration.
    public var log: URL { url.appendingPathComponent("train.log") }
    /// iteration,seconds,steps,metric columns per evaluation.
    public var evaluationLog: URL { url.appendingPathComponent("eval.csv") }
    public var lossPlot: URL { url.appendingPathComponent("loss.png") }
    public func preview(step: Int) -> URL { url.appendingPathComponent("samples-\(step).png") }

    public var path: String { url.path }

    /// Makes the folder (and its parents); a file in the way or a permission problem is a clear error.
    public func create() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw RunDirectoryError.notAFolder(path: path) }
            return
        }
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw RunDirectoryError.cannotCreate(path: path, reason: (error as NSError).localizedFailureReason ?? error.localizedDescription)
        }
    }

    /// The run files this folder holds (empty for a new folder).
    public var runFiles: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { ["checkpoint.safetensors", "train.log", "eval.csv", "pretraining.json", "pretrain", "loss.png"].contains($0)
            || ($0.hasPrefix("samples-") && $0.hasSuffix(".png")) }.sorted()
    }

    /// Deletes the run files (`--force` for a new run in an old run's folder).
    public func clear() throws {
        for name in runFiles { try FileManager.default.removeItem(at: url.appendingPathComponent(name)) }
    }

    /// Takes the folder's lock for as long as the returned object lives (released by the kernel when the
    /// process ends, however it ends).
    public func lock() throws -> RunLock {
        try create()
        let lockPath = url.appendingPathComponent(".lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw RunDirectoryError.cannotCreate(path: lockPath, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, 31)
            close(fd)
            throw RunDirectoryError.busy(path: path, pid: n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : "?")
        }
        _ = ftruncate(fd, 0)
        let pid = Array(String(getpid()).utf8)
        _ = pwrite(fd, pid, pid.count, 0)
        return RunLock(fd: fd)
    }
}

/// Holds a run folder's lock until released or deinitialised.
public final class RunLock {
    private var fd: Int32
    init(fd: Int32) { self.fd = fd }
    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }
    deinit { release() }
}

/// The loop settings of a run, stored in its checkpoints so that a resumed run keeps them.
public struct RunSettings: Codable, Equatable, Sendable {
    public var saveEvery: Int
    public var logEvery: Int?
    public var evalEvery: Int
    /// Threads the run used: a resumed run continues exactly only at the same count.
    public var threads: Int

    public init(saveEvery: Int, logEvery: Int?, evalEvery: Int, threads: Int) {
        self.saveEvery = saveEvery
        self.logEvery = logEvery
        self.evalEvery = evalEvery
        self.threads = threads
    }

    static let key = "run"

    /// The settings stored in a checkpoint (nil for checkpoints written before they were).
    public static func stored(in metadata: [String: String]) -> RunSettings? {
        metadata[key].flatMap { try? JSONDecoder().decode(RunSettings.self, from: Data($0.utf8)) }
    }
}

/// A CSV log the run appends to; a failed write (a full disk) is an error naming the file, not a crash.
public final class LogFile {
    public let url: URL
    private let handle: FileHandle

    /// Opens `url` (which must exist) for appending.
    public init(appendingTo url: URL) throws {
        self.url = url
        do {
            handle = try FileHandle(forWritingTo: url)
            try handle.seekToEnd()
        } catch { throw RunDirectoryError.cannotWrite(path: url.path, reason: Self.reason(error)) }
    }

    public func append(_ text: String) throws {
        do { try handle.write(contentsOf: Data(text.utf8)) } catch {
            throw RunDirectoryError.cannotWrite(path: url.path, reason: Self.reason(error))
        }
    }

    deinit { try? handle.close() }

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let posix = (ns.userInfo[NSUnderlyingErrorKey] as? NSError), posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return ns.localizedDescription
    }
}
