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
    /// Data sets that come with class labels (a folder has them only when laid out in class subfolders).
    public var comesWithLabels: Bool {
        switch self {
        case .fashionMNIST, .shapes: return true
        case .toy, .folder: return false
        }
    }

    /// Loads or sets up the data set (throws when files are missing or inconsistent). With `classes`, the
    /// set must be labelled (a folder is then read as one subfolder per class).
    public func open(classes: Bool = false) throws -> any Dataset {
        let data: any Dataset
        switch self {
        case .toy(let t): data = ToyDataset(t)
        case .fashionMNIST: data = try FashionMNIST.dataset(.train)
        case .shapes: data = ShapesDataset()
        case .folder(let p): data = classes ? try ImageFolder.classDataset(p) : try ImageFolder.dataset(p)
        }
        if classes && data.classNames == nil {
            throw DatasetError("\(description) has no class labels: class-conditional training (--classes) needs fashion-mnist, "
                               + "shapes (labelled by style) or folder:PATH with one subfolder per class")
        }
        return data
    }

    /// The training images as one tensor (latent CT encodes them once): Fashion-MNIST's 60,000, a folder's
    /// files, `shapesCount` generated shapes. Point sets have no fixed training set: nil.
    public func trainingImages(shapesCount: Int = 20_000, seed: UInt64 = 0) throws -> Tensor? {
        try labelledTrainingImages(classes: false, shapesCount: shapesCount, seed: seed)?.images
    }

    /// `trainingImages` with their labels when `classes` (nil labels otherwise).
    public func labelledTrainingImages(classes: Bool, shapesCount: Int = 20_000, seed: UInt64 = 0) throws -> (images: Tensor, labels: [Int]?)? {
        switch self {
        case .toy: return nil
        case .shapes:
            let (images, labels) = Shapes.labelledBatch(count: shapesCount, seed: seed)
            return (images, classes ? labels : nil)
        case .fashionMNIST:
            let (images, labels) = try FashionMNIST.load(.train)
            return (images, classes ? labels : nil)
        case .folder(let p):
            if classes { let c = try ImageFolder.loadClasses(p); return (c.images, c.labels) }
            return (try ImageFolder.load(p).images, nil)
        }
    }

    /// `count` fresh reference samples for metrics (toy: new draws; finite sets: the held-out split
    /// where there is one, else a seeded subset). With `classes` a folder is read as class subfolders;
    /// `label` keeps only that class's samples (fewer than `count` when the class has fewer).
    public func referenceSamples(count: Int, seed: UInt64, classes: Bool = false, label: Int? = nil) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        func subset(_ all: Tensor, _ labels: [Int]?) -> Tensor {
            var indices = Array(0..<all.shape[0])
            if let label, let labels { indices = indices.filter { labels[$0] == label } }
            return TensorDataset(all).gather(Array(indices.shuffled(using: &rng).prefix(count)))
        }
        switch self {
        case .toy(let t): return t.sample(count: count, rng: &rng)
        case .shapes:
            guard let label else { return Shapes.batch(count: count, seed: seed) }
            // A quarter of the images have each style: draw enough to keep `count` of this one.
            let (images, labels) = Shapes.labelledBatch(count: 4 * count + 256, seed: seed)
            let kept = labels.indices.filter { labels[$0] == label }.prefix(count)
            return TensorDataset(images).gather(Array(kept))
        case .fashionMNIST:
            let (test, labels) = try FashionMNIST.load(.test)
            return subset(test, labels)
        case .folder(let p):
            if classes || label != nil {
                let c = try ImageFolder.loadClasses(p)
                return subset(c.images, c.labels)
            }
            return subset(try ImageFolder.load(p).images, nil)
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

    public mutating func batch(forStep k: Int) -> Tensor { labelledBatch(forStep: k).batch }

    /// The batch of iteration k with its labels (nil for unlabelled data); the images are those of `batch(forStep:)`.
    public mutating func labelledBatch(forStep k: Int) -> (batch: Tensor, labels: [Int]?) {
        if let finite = dataset as? TensorDataset, let n = dataset.count {
            let perEpoch = n / batchSize
            let epoch = k / perEpoch, position = k % perEpoch
            if epoch != cachedEpoch {
                var rng = SplitMix64(seed: seed).split(0xE90C_0000 &+ UInt64(epoch))
                order = Array(0..<n)
                order.shuffle(using: &rng)
                cachedEpoch = epoch
            }
            let indices = Array(order[(position * batchSize)..<((position + 1) * batchSize)])
            return (finite.gather(indices), finite.labels(at: indices))
        }
        var rng = SplitMix64(seed: seed).split(0xDA7A_0000 &+ UInt64(k))
        return dataset.nextLabelledBatch(size: batchSize, rng: &rng)
    }
}
