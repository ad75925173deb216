// Data-parallel training's two ideas, independent of how processes talk: a `Collective` (sum, maximum,
// broadcast across processes; a no-op for one process) and a `Shard`, the part of a global batch this
// process computes. Every random draw of a step is made for the whole global batch, so a sample's noise
// and levels depend on (seed, iteration, its index) and never on the number of processes.
import CKTensor

public protocol Collective: AnyObject {
    /// This process's index, 0 ..< size; rank 0 writes the run's files.
    var rank: Int { get }
    var size: Int { get }
    /// In-place sums over all processes.
    func sum(_ values: inout [Float]) throws
    func sum(_ values: inout [Double]) throws
    /// In-place maximum over all processes.
    func maximum(_ values: inout [Double]) throws
    /// Rank `root`'s values to every process.
    func broadcast(_ values: inout [Float], from root: Int) throws
}

extension Collective {
    public var isPrimary: Bool { rank == 0 }

    /// This process's share of a global batch of `count`: contiguous, sizes differing by at most one.
    public func shard(of count: Int) -> Shard {
        let base = count / size, extra = count % size
        let start = rank * base + min(rank, extra)
        return Shard(range: start..<(start + base + (rank < extra ? 1 : 0)), batchSize: count)
    }

    /// Sums equally shaped tensors over all processes with one collective call on a flat buffer.
    public func sum(_ tensors: [Tensor]) throws -> [Tensor] {
        guard size > 1 else { return tensors }
        var flat = tensors.flatMap(\.storage)
        try sum(&flat)
        var offset = 0
        return tensors.map { t in
            defer { offset += t.count }
            return Tensor(shape: t.shape, storage: Array(flat[offset..<(offset + t.count)]))
        }
    }
}

/// One process: every collective is the identity.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sum(_ values: inout [Float]) throws {}
    public func sum(_ values: inout [Double]) throws {}
    public func maximum(_ values: inout [Double]) throws {}
    public func broadcast(_ values: inout [Float], from root: Int) throws {}
}

/// The samples of a global batch one process computes.
public struct Shard: Sendable, Equatable {
    public let range: Range<Int>
    public let batchSize: Int

    public init(range: Range<Int>, batchSize: Int) {
        precondition(range.lowerBound >= 0 && range.upperBound <= batchSize, "Shard: \(range) outside a batch of \(batchSize)")
        self.range = range
        self.batchSize = batchSize
    }

    public static func whole(_ batchSize: Int) -> Shard { Shard(range: 0..<batchSize, batchSize: batchSize) }

    public var isWhole: Bool { range.count == batchSize }

    /// This shard's rows of a global-batch tensor (N, ...).
    public func rows(_ t: Tensor) -> Tensor { isWhole ? t : t.slice(range) }
    public func rows(_ t: Tensor?) -> Tensor? { t.map { rows($0) } }

    /// This shard's entries of per-sample values.
    public func values<T>(_ a: [T]) -> [T] { isWhole ? a : Array(a[range]) }

    /// The batch mean of per-sample values (N) as this shard's part: summed over the shards it is the mean
    /// over the global batch. For the whole batch it is exactly `mean()`.
    public func mean(_ perSample: Tensor) -> Tensor { isWhole ? perSample.mean() : perSample.sum() * (1 / Float(batchSize)) }
}
