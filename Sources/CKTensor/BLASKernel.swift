// Which OpenBLAS kernel set runs the GEMMs. Debian's OpenBLAS 0.3.21 does not know some recent CPUs
// (a Sapphire Rapids VM here) and falls back to its generic "Prescott" SSE3 kernels, which made every
// unet-xs step 2x slower on a CPU with AVX-512. OpenBLAS picks its kernels when it is loaded, from
// OPENBLAS_CORETYPE, so a program can only fix this by starting again with that variable set.
import COpenBLAS
import Foundation

public enum BLASKernel {
    /// The kernel set OpenBLAS chose ("Haswell", "SkylakeX", "Prescott", ...).
    public static var current: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's generic fallbacks: kernels without AVX.
    static let genericCores: Set<String> = ["prescott", "core2", "katmai", "coppermine", "northwood", "banias", "atom", "nehalem"]

    /// The kernel set this CPU can run best when OpenBLAS fell back to a generic one (from the CPU flags the
    /// kernel reports), or nil when OpenBLAS chose well or the user set OPENBLAS_CORETYPE.
    public static func better(flags: Set<String>? = nil, current: String = current,
                              environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, genericCores.contains(current.lowercased()) else { return nil }
        guard let flags = flags ?? cpuFlags() else { return nil }
        if flags.isSuperset(of: ["avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// The first "flags" line of /proc/cpuinfo (Linux), or nil.
    static func cpuFlags() -> Set<String>? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Starts this program again with OPENBLAS_CORETYPE set when OpenBLAS fell back to generic kernels on a
    /// CPU that has better ones; returns only when no restart is needed (or it failed).
    public static func restartWithBetterKernelIfNeeded() {
        guard ProcessInfo.processInfo.environment["CMKIT_BLAS_RESTARTED"] == nil, let core = better() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("CMKIT_BLAS_RESTARTED", "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)       // returns only on failure: keep going as we are
    }
}
