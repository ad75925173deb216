// What every harness needs: the input as a file (the readers take paths) on tmpfs, one per process.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes libFuzzer's input to a per-process file under /dev/shm (or $TMPDIR) and returns its path.
public func inputFile(_ data: UnsafePointer<UInt8>, _ size: Int, suffix: String) -> String {
    let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")
    let path = "\(dir)/ck-fuzz-\(getpid())\(suffix)"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot create \(path)")
    var done = 0
    while done < size {
        let n = write(fd, data + done, size - done)
        precondition(n > 0, "cannot write \(path)")
        done += n
    }
    close(fd)
    return path
}

/// A finding: the reader failed in a way other than its own error type (a crash is a finding too).
public func unexpected(_ error: Error, _ reader: String) -> Never {
    fatalError("\(reader): unexpected \(type(of: error)): \(error)")
}

/// libFuzzer's entry when the program has its own main (SwiftPM's executables do): parses libFuzzer's
/// options from the command line and calls `test` on every input.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ test: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}
