// Options shared by several subcommands, and argument conversions for library enums.
import ArgumentParser
import CKNN
import CKTensor

extension ModelName: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for BLAS and our own kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
    }

    /// Sets our kernels' and OpenBLAS's thread counts (and the allocator's policy) before any work.
    func apply() { Parallel.configure(threads: threads ?? Parallel.threadCount) }
}
