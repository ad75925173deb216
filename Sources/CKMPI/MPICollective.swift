// Data-parallel training over MPI (OpenMPI): a `Collective` whose sums are MPI_Allreduce on one flat buffer.
// Only used when the process was started by mpirun; run plainly, cmkit never initialises MPI.
import CKMPIShim
import CKTensor
import CKNN

public struct MPIError: Error, CustomStringConvertible {
    public let operation: String, rank: Int, message: String
    public var description: String { "MPI \(operation) failed on rank \(rank): \(message)" }
}

public final class MPICollective: Collective {
    public let rank: Int, size: Int
    /// What the sums cost so far: wall seconds inside MPI_Allreduce, bytes summed, calls.
    public private(set) var sumSeconds = 0.0, sumBytes = 0, sumCalls = 0

    /// True when mpirun (or mpiexec) started this process.
    public static var launched: Bool { ck_mpi_launched() != 0 }

    /// Initialises MPI; errors are returned (and thrown here), never an abort.
    public init() throws {
        var r: Int32 = 0, s: Int32 = 0
        let rc = ck_mpi_init(&r, &s)
        guard rc == 0 else { throw MPIError(operation: "init", rank: -1, message: Self.text(rc)) }
        rank = Int(r)
        size = Int(s)
    }

    public func sum(_ values: inout [Float]) throws {
        let t0 = Clock.seconds()
        try check(values.withUnsafeMutableBufferPointer { ck_mpi_allreduce_sum_float($0.baseAddress, $0.count) }, "all-reduce (sum)")
        sumSeconds += Clock.seconds() - t0
        sumBytes += 4 * values.count
        sumCalls += 1
    }

    public func sum(_ values: inout [Double]) throws {
        try check(values.withUnsafeMutableBufferPointer { ck_mpi_allreduce_sum_double($0.baseAddress, $0.count) }, "all-reduce (sum)")
    }

    public func maximum(_ values: inout [Double]) throws {
        try check(values.withUnsafeMutableBufferPointer { ck_mpi_allreduce_max_double($0.baseAddress, $0.count) }, "all-reduce (max)")
    }

    public func broadcast(_ values: inout [Float], from root: Int) throws {
        try check(values.withUnsafeMutableBufferPointer { ck_mpi_broadcast_float($0.baseAddress, $0.count, Int32(root)) }, "broadcast")
    }

    public func barrier() throws { try check(ck_mpi_barrier(), "barrier") }

    public func finalize() { _ = ck_mpi_finalize() }

    /// Ends every process of the job: the other ranks would otherwise wait forever in the next collective.
    public func abort(code: Int32 = 1) -> Never {
        ck_mpi_abort(code)
        fatalError("MPI_Abort returned")
    }

    private func check(_ rc: Int32, _ operation: String) throws {
        guard rc == 0 else { throw MPIError(operation: operation, rank: rank, message: Self.text(rc)) }
    }

    static func text(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        ck_mpi_error_string(code, &buffer, Int32(buffer.count))
        return String(cString: buffer)
    }
}
