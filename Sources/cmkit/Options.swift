// Options shared by several subcommands, and argument conversions for library enums.
import ArgumentParser
import CKNN
import CKTensor

extension ModelName: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

struct ThreadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Threads for BLAS and our own kernels (default: all cores).",
        discussion: "With two or more, a batch of at least 8 rows per thread runs in one piece per thread, each on its own core; the result then differs from one thread's in the last bits only (the order sums are taken in)."))
    var threads: Int?

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be from 1 to 256.") }
    }

    /// Sets our kernels' and OpenBLAS's thread counts (and the allocator's policy) before any work.
    func apply() { Parallel.configure(threads: threads ?? Parallel.threadCount) }
}
