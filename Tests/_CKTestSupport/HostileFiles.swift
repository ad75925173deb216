// Helpers for tests of readers against hostile input: FIFOs that would block a reader forever, and seeded
// byte mutations of valid files (the in-suite fuzz tests).
import Foundation
import CKTensor
#if canImport(Glibc)
import Glibc
#endif

/// Creates a FIFO (named pipe) at `path`.
public func makeFIFO(_ path: String) throws {
    guard mkfifo(path, 0o644) == 0 else {
        throw NSError(domain: "mkfifo", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: "mkfifo \(path): \(String(cString: strerror(errno)))"])
    }
}

/// Runs `body` on its own thread and returns what it threw (nil if it returned), or `timedOut` if it was
/// still running after `seconds`; then `fifo` is opened for writing and closed, so a reader blocked on it
/// sees end-of-file and the thread finishes instead of hanging the test process.
public func outcome(within seconds: Double, unblocking fifo: String, _ body: @escaping () throws -> Void)
    -> (error: Error?, timedOut: Bool) {
    final class Box: @unchecked Sendable { var error: Error? }
    let box = Box(), done = DispatchSemaphore(value: 0)
    let thread = Thread {
        do { try body() } catch { box.error = error }
        done.signal()
    }
    thread.start()
    if done.wait(timeout: .now() + seconds) == .success { return (box.error, false) }
    for _ in 0..<50 {        // the reader may not have reached open() yet: retry briefly
        let fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 { close(fd) }
        if done.wait(timeout: .now() + 0.1) == .success { break }
    }
    return (box.error, true)
}

// MARK: - Mutations

/// Seeded mutations of a valid file, for fuzz tests: each call gives one variant.
public struct Mutator {
    public var rng: SplitMix64
    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }

    /// Values that break arithmetic: 0, 1, the sign bit and all-ones at 8, 16, 32 and 64 bits.
    public static let extremes: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
                                            0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max]

    /// One random mutation: bit flips, a byte set to an extreme, a truncation, inserted, deleted or duplicated
    /// bytes, or a 1-8 byte field overwritten with an extreme value (either byte order). `hot` is a range of
    /// header bytes where half of the mutations land.
    public mutating func mutate(_ input: [UInt8], hot: Range<Int>? = nil) -> [UInt8] {
        var b = input
        func position() -> Int {
            if let hot, !hot.isEmpty, hot.upperBound <= b.count, below(2) == 0 { return hot.lowerBound + below(hot.count) }
            return below(b.count)
        }
        guard !b.isEmpty else { return [UInt8(truncatingIfNeeded: rng.next())] }
        switch below(8) {
        case 0:                                                           // 1-4 bit flips
            for _ in 0...below(4) { let i = position(); b[i] ^= 1 << UInt8(below(8)) }
        case 1:                                                           // a byte to an extreme
            b[position()] = [0, 1, 0x7F, 0x80, 0xFF][below(5)]
        case 2:                                                           // truncation
            b.removeSubrange(below(b.count)...)
        case 3:                                                           // inserted random bytes
            let i = position(), n = 1 + below(16)
            b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
        case 4:                                                           // deleted bytes
            let i = position(), n = min(1 + below(16), b.count - i)
            b.removeSubrange(i..<(i + n))
        case 5:                                                           // a duplicated stretch
            let i = below(b.count), n = min(1 + below(64), b.count - i)
            b.insert(contentsOf: Array(b[i..<(i + n)]), at: position())
        case 6:                                                           // a field set to an extreme
            let width = [1, 2, 4, 8][below(4)], i = position()
            var v = Mutator.extremes[below(Mutator.extremes.count)]
            if below(2) == 0 { v = v.byteSwapped >> (64 - 8 * UInt64(width)) }
            for k in 0..<width where i + k < b.count { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        default:                                                          // random bytes over a stretch
            let i = position()
            for k in 0..<(1 + below(8)) where i + k < b.count { b[i + k] = UInt8(truncatingIfNeeded: rng.next()) }
        }
        return b
    }

    /// Decimal numbers that break parsers and arithmetic.
    public static let extremeNumbers = ["0", "-1", "1", "-0", "255", "65536", "4294967295", "4294967296", "2147483648",
                                        "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                                        "18446744073709551616", "4611686018427387904", "1e309", "1.5", "99999999999999999999999"]

    /// Replaces one run of digits inside `text` (a byte range of a text header) with an extreme number;
    /// returns the new bytes and the change in length (the caller fixes the header's length field).
    public mutating func replacingNumber(in bytes: [UInt8], within text: Range<Int>) -> (bytes: [UInt8], delta: Int) {
        let digit = { (c: UInt8) in c >= 0x30 && c <= 0x39 }
        var runs: [Range<Int>] = [], i = text.lowerBound
        while i < min(text.upperBound, bytes.count) {
            if digit(bytes[i]) {
                var j = i
                while j < min(text.upperBound, bytes.count), digit(bytes[j]) { j += 1 }
                runs.append(i..<j); i = j
            } else { i += 1 }
        }
        guard !runs.isEmpty else { return (bytes, 0) }
        let run = runs[below(runs.count)], number = Array(Mutator.extremeNumbers[below(Mutator.extremeNumbers.count)].utf8)
        var b = bytes
        b.replaceSubrange(run, with: number)
        return (b, number.count - run.count)
    }
}

