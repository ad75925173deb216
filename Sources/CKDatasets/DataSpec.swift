// Naming a data set on the command line (`toy:checkerboard`, `fashion-mnist`, `shapes`, `folder:PATH`),
// and the batch of training iteration k as a pure function of (seed, k), so resumed runs see the same data.
import CKTensor

public enum DataSpec: Equatable, CustomStringConvertible, Sendable {
    case toy(Toy2D)
    case fashionMNIST
    case shapes
    case folder(String)

    public static let help = "toy:checkerboard | toy:8gaussians | toy:swissroll | fashion-mnist | shapes | folder:PATH"

    public init(parsing text: String) throws {
        if text.hasPrefix("toy:") {
            let name = String(text.dropFirst(4))
            guard let toy = Toy2D(rawValue: name) else {
                throw DatasetError("unknown toy set '\(name)': use one of \(Toy2D.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self = .toy(toy)
        } else if text.hasPrefix("folder:") {
            let path = String(text.dropFirst(7))
            guard !path.isEmpty else { throw DatasetError("folder: needs a path, e.g. folder:./images") }
            self = .folder(path)
        } else if text == "fashion-mnist" {
            self = .fashionMNIST
        } else if text == "shapes" {
            self = .shapes
        } else {
            throw DatasetError("unknown data '\(text)': use \(DataSpec.help)")
        }
    }

    public var description: String {
        switch self {
        case .toy(let t): return "toy:\(t.rawValue)"
        case .fashionMNIST: return "fashion-mnist"
        case .shapes: return "shapes"
        case .folder(let p): return "folder:\(p)"
        }
    }

    public var isPointCloud: Bool { if case .toy = self { return true } else { return false } }

    /// Loads or sets up the data set (throws when files are missing or inconsistent).
    public func open() throws -> any Dataset {
        switch self {
        case .toy(let t): return ToyDataset(t)
        case .fashionMNIST: return try FashionMNIST.dataset(.train)
        case .shapes: return ShapesDataset()
        case .folder(let p): return try ImageFolder.dataset(p)
        }
    }

    /// The training images as one tensor (latent CT encodes them once): Fashion-MNIST's 60,000, a folder's
    /// files, `shapesCount` generated shapes. Point sets have no fixed training set: nil.
    public func trainingImages(shapesCount: Int = 20_000, seed: UInt64 = 0) throws -> Tensor? {
        switch self {
        case .toy: return nil
        case .shapes: return Shapes.batch(count: shapesCount, seed: seed)
        case .fashionMNIST: return try FashionMNIST.load(.train).images
        case .folder(let p): return try ImageFolder.load(p).images
        }
    }

    /// `count` fresh reference samples for metrics (toy: new draws; finite sets: the held-out split
    /// where there is one, else a seeded subset).
    public func referenceSamples(count: Int, seed: UInt64) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        switch self {
        case .toy(let t): return t.sample(count: count, rng: &rng)
        case .shapes: return Shapes.batch(count: count, seed: seed)
        case .fashionMNIST:
            let test = try FashionMNIST.load(.test).images
            return TensorDataset(test).gather(Array((0..<test.shape[0]).shuffled(using: &rng).prefix(count)))
        case .folder(let p):
            let all = try ImageFolder.load(p).images
            return TensorDataset(all).gather(Array((0..<all.shape[0]).shuffled(using: &rng).prefix(count)))
        }
    }
}

/// Serves the batch of iteration k from (seed, k) alone. Finite sets go through epoch-wise permutations
/// (epoch e's order is drawn from its own generator); infinite sets draw with a generator split by k.
public struct StepBatcher {
    public private(set) var dataset: any Dataset
    public let batchSize: Int, seed: UInt64
    private var cachedEpoch = -1
    private var order: [Int] = []

    public init(dataset: any Dataset, batchSize: Int, seed: UInt64) throws {
        if let n = dataset.count, batchSize > n {
            throw DatasetError("batch size \(batchSize) is larger than the data set (\(n) samples): use a smaller batch")
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.seed = seed
    }

    public mutating func batch(forStep k: Int) -> Tensor {
        if let finite = dataset as? TensorDataset, let n = dataset.count {
            let perEpoch = n / batchSize
            let epoch = k / perEpoch, position = k % perEpoch
            if epoch != cachedEpoch {
                var rng = SplitMix64(seed: seed).split(0xE90C_0000 &+ UInt64(epoch))
                order = Array(0..<n)
                order.shuffle(using: &rng)
                cachedEpoch = epoch
            }
            return finite.gather(Array(order[(position * batchSize)..<((position + 1) * batchSize)]))
        }
        var rng = SplitMix64(seed: seed).split(0xDA7A_0000 &+ UInt64(k))
        return dataset.nextBatch(size: batchSize, rng: &rng)
    }
}
