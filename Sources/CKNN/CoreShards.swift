// A shard of a batch computed in pieces, one per core, at once: each piece runs its own forward and backward
// with serial kernels, and the pieces' gradients are summed. The same idea as the processes of a
// `Collective`, inside one process: every draw is made for the whole batch and each piece's loss is its part
// of the batch mean, so the sum is the shard's gradient (up to the order floats are added in).
import CKTensor
#if canImport(Glibc)
import Glibc
#endif

extension Shard {
    /// This shard cut into `parts` contiguous pieces whose sizes differ by at most one, each still a share of
    /// the same global batch (fewer pieces when there are fewer rows).
    public func split(into parts: Int) -> [Shard] {
        let rows = range.count, parts = max(1, min(parts, rows))
        return (0..<parts).map { p in
            Shard(range: (range.lowerBound + rows * p / parts)..<(range.lowerBound + rows * (p + 1) / parts), batchSize: batchSize)
        }
    }
}

public enum CoreShards {
    /// Rows a piece needs at least; a smaller shard is computed whole, its ops spread over the cores.
    public static let minimumRows = 8

    /// CK_CORE_SHARDS=off computes every shard whole, for A/B timing against the ops' own threading.
    nonisolated(unsafe) public static var enabled: Bool = {
        guard let raw = getenv("CK_CORE_SHARDS") else { return true }
        return String(cString: raw) != "off"
    }()

    /// The pieces `shard` is computed in: one per thread when each gets `minimumRows`, else the shard whole.
    public static func pieces(of shard: Shard) -> [Shard] {
        let threads = Parallel.threadCount
        guard enabled, threads > 1, shard.range.count >= threads * minimumRows else { return [shard] }
        return shard.split(into: threads)
    }

    /// Runs `loss(piece, &rng)` for every piece at once, each from a copy of `rng`, and differentiates each
    /// piece's loss with respect to `parameters` on its own core. Returns the sum of the losses and each piece's
    /// gradients, in piece order: the shard's gradients are their sum in that order (`takeSum()`, or
    /// `Optimizer.step(summing:)`, which adds them as it reads them), so a seed gives the same sums every time.
    /// `loss` must draw what the whole batch needs, so that every piece leaves its generator where the others
    /// do; `rng` ends there.
    public static func gradients<Report>(of parameters: [Parameter], pieces: [Shard], rng: inout SplitMix64,
                                         _ loss: (Shard, inout SplitMix64) throws -> (loss: Tensor, report: Report))
        throws -> (loss: Float, parts: [[Tensor]], reports: [Report]) {
        let values = parameters.map(\.value)
        let results = try Parallel.onCores(pieces.count) { [rng] i in
            Result { () throws -> (Float, [Tensor], Report, SplitMix64) in
                var pieceRNG = rng
                let (value, report) = try loss(pieces[i], &pieceRNG)
                return (value.scalar, Tape.gradients(of: value, wrt: values), report, pieceRNG)
            }
        }.map { try $0.get() }
        rng = results[0].3
        for (i, piece) in results.enumerated().dropFirst() {
            precondition(piece.3 == rng, "CoreShards: piece \(i) drew differently from piece 0; every draw must be the whole batch's")
        }
        return (results.map(\.0).reduce(0, +), results.map(\.1), results.map(\.2))
    }
}
