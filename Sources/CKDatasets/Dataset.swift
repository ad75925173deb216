// The Dataset abstraction: batches of a fixed sample shape, drawn with a caller's generator.
import CKTensor

/// A source of training batches. Image sets yield (N, C, H, W), toy sets (N, 2); values in [-1, 1]
/// (toy sets: standard deviation 0.5 per coordinate, not bounded).
public protocol Dataset {
    /// Shape of one sample: [C, H, W] or [2].
    var sampleShape: [Int] { get }
    /// Number of distinct samples, or nil for sets that draw fresh samples every time.
    var count: Int? { get }
    /// The next `size` samples: (size, sampleShape...).
    mutating func nextBatch(size: Int, rng: inout some RandomNumberGenerator) -> Tensor
    /// The names of the classes its labels index, or nil for unlabelled data.
    var classNames: [String]? { get }
    /// The next `size` samples with their labels (nil for unlabelled data).
    mutating func nextLabelledBatch(size: Int, rng: inout some RandomNumberGenerator) -> (batch: Tensor, labels: [Int]?)
}

extension Dataset {
    public var classNames: [String]? { nil }
    public mutating func nextLabelledBatch(size: Int, rng: inout some RandomNumberGenerator) -> (batch: Tensor, labels: [Int]?) {
        (nextBatch(size: size, rng: &rng), nil)
    }
}

/// A finite set held in memory (N, sampleShape...), served in epoch-wise shuffled order: each epoch is a
/// fresh permutation drawn from the caller's generator. A batch never spans two epochs; when fewer than
/// `size` samples are left the rest of the epoch is dropped and a new permutation starts.
public struct TensorDataset: Dataset {
    public let data: Tensor
    public let labels: [Int]?
    public let classNames: [String]?
    public private(set) var epoch = 0
    private var order: [Int] = []
    private var position = 0

    /// `classNames`: what `labels` index (labels without names are kept for lookups but do not make the
    /// set labelled for training).
    public init(_ data: Tensor, labels: [Int]? = nil, classNames: [String]? = nil) {
        precondition(data.rank >= 2 && data.shape[0] > 0, "TensorDataset: need (N, ...) with N > 0, got \(data.shape)")
        precondition(labels == nil || labels!.count == data.shape[0],
                     "TensorDataset: \(labels?.count ?? 0) labels for \(data.shape[0]) samples")
        precondition(classNames == nil || (labels != nil && labels!.allSatisfy { (0..<classNames!.count).contains($0) }),
                     "TensorDataset: labels outside the \(classNames?.count ?? 0) classes")
        self.data = data.detached()
        self.labels = labels
        self.classNames = classNames
    }

    /// The labels of the samples at `indices`, if the set is labelled.
    public func labels(at indices: [Int]) -> [Int]? {
        guard classNames != nil, let labels else { return nil }
        return indices.map { labels[$0] }
    }

    public var sampleShape: [Int] { Array(data.shape.dropFirst()) }
    public var count: Int? { data.shape[0] }

    public mutating func nextBatch(size: Int, rng: inout some RandomNumberGenerator) -> Tensor {
        nextIndexedBatch(size: size, rng: &rng).batch
    }

    public mutating func nextLabelledBatch(size: Int, rng: inout some RandomNumberGenerator) -> (batch: Tensor, labels: [Int]?) {
        let (batch, indices) = nextIndexedBatch(size: size, rng: &rng)
        return (batch, labels(at: indices))
    }

    /// The next batch and the dataset indices it holds (for labels).
    public mutating func nextIndexedBatch(size: Int, rng: inout some RandomNumberGenerator) -> (batch: Tensor, indices: [Int]) {
        let n = data.shape[0]
        precondition(size > 0 && size <= n, "TensorDataset: batch size \(size) for \(n) samples")
        if order.isEmpty || position + size > n {
            if !order.isEmpty { epoch += 1 }
            order = Array(0..<n)
            order.shuffle(using: &rng)
            position = 0
        }
        let indices = Array(order[position..<(position + size)])
        position += size
        return (gather(indices), indices)
    }

    /// Samples at `indices`, in that order.
    public func gather(_ indices: [Int]) -> Tensor {
        let per = sampleShape.reduce(1, *)
        return Tensor(shape: [indices.count] + sampleShape) { out in
            data.storage.withUnsafeBufferPointer { src in
                for (j, i) in indices.enumerated() {
                    for k in 0..<per { out[j * per + k] = src[i * per + k] }
                }
            }
        }
    }
}
