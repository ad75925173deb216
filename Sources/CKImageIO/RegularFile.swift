// Opening input files safely: never block on a FIFO, refuse directories and devices with a clear reason.
import Glibc

/// Why a path cannot be read as a file; readers wrap `reason` into their own error, which names the file.
public struct FileProblem: Error, CustomStringConvertible, Equatable {
    public let reason: String           // "is a directory, not a file", "no such file", ...
    public var description: String { reason }
}

public enum RegularFile {
    /// What a non-regular file is, as the end of a sentence that starts with its path.
    public static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "is a directory, not a file"
        case S_IFIFO: return "is a FIFO (named pipe), not a file"
        case S_IFSOCK: return "is a socket, not a file"
        case S_IFCHR: return "is a character device, not a file"
        case S_IFBLK: return "is a block device, not a file"
        default: return "is not a regular file"
        }
    }

    /// Opens `path` read-only; the caller owns the descriptor. O_NONBLOCK keeps open() from waiting for a FIFO's
    /// writer; the type is then checked on the open descriptor (no race with a rename in between).
    public static func open(_ path: String) throws -> (fd: Int32, size: Int) {
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw FileProblem(reason: errno == ENOENT ? "no such file" : "cannot be opened (\(String(cString: strerror(errno))))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw FileProblem(reason: "cannot be examined (\(reason))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else { close(fd); throw FileProblem(reason: kind(of: st.st_mode)) }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return (fd, Int(st.st_size))
    }

    /// The whole content of a regular file.
    public static func contents(_ path: String) throws -> [UInt8] {
        let (fd, size) = try open(path)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: max(size, 0) + 1), used = 0     // one spare byte to see a file that grew
        while true {
            if used == bytes.count { bytes += [UInt8](repeating: 0, count: max(bytes.count, 1 << 16)) }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + used, $0.count - used) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileProblem(reason: "cannot be read (\(String(cString: strerror(errno))))")
            }
            if n == 0 { break }
            used += n
        }
        bytes.removeSubrange(used...)
        return bytes
    }
}
