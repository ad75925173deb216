// The image classifier behind the FID-style metric: training, accuracy, features, the Fréchet score,
// classifier checkpoints, and where the shipped one is found.
import Foundation
import CKTensor
import CKNN


// MARK: - Training

/// One training iteration as reported to `progress`.
public struct ClassifierProgress: Sendable {
    public let iteration: Int, iterations: Int
    /// This iteration's loss, and an exponential moving average (decay 0.95) that is easier to read.
    public let loss: Float, smoothedLoss: Float
    public let learningRate: Float
    /// Wall time since training started.
    public let seconds: Double

    public var iterationsPerSecond: Double { Double(iteration) / max(seconds, 1e-9) }
    public var secondsRemaining: Double { Double(iterations - iteration) / max(iterationsPerSecond, 1e-9) }
}

public struct ClassifierTrainingResult {
    public let classifier: Classifier
    /// The smoothed training loss at the end.
    public let finalLoss: Float
    /// Fraction of `test` classified correctly, or nil when no test set was given.
    public let testAccuracy: Double?
    /// Training time in seconds (without the test evaluation).
    public let seconds: Double
}

/// Trains a `Classifier` on `images` (N, C, H, W) in [-1, 1] with labels in 0..<classes: softmax
/// cross-entropy, Adam, `learningRate` warmed up linearly over the first 5% of the iterations and then
/// cosine-decayed to 0, batches drawn in epoch-wise shuffled order. Weights and batch order depend only
/// on `seed`. Throws `NonFiniteLoss` before applying a non-finite loss.
public func trainClassifier(images: Tensor, labels: [Int], classes: Int, iterations: Int, batchSize: Int = 64,
                            learningRate: Float = 2e-3, seed: UInt64 = 0,
                            test: (images: Tensor, labels: [Int])? = nil,
                            progress: ((ClassifierProgress) -> Void)? = nil) throws -> ClassifierTrainingResult {
    precondition(images.rank == 4 && images.shape[2] == images.shape[3] && labels.count == images.shape[0],
                 "trainClassifier: images \(images.shape) must be (N, C, H, H) with one of \(labels.count) labels each")
    precondition(iterations >= 0 && batchSize >= 1 && batchSize <= labels.count,
                 "trainClassifier: \(iterations) iterations of batch \(batchSize) from \(labels.count) images")
    precondition(labels.allSatisfy { $0 >= 0 && $0 < classes }, "trainClassifier: labels outside 0..<\(classes)")
    var initRNG = SplitMix64(seed: seed)
    let classifier = Classifier(channels: images.shape[1], imageSize: images.shape[2], classes: classes, rng: &initRNG)
    var optimizer = Adam(parameters: classifier.parameters, learningRate: learningRate)
    var orderRNG = SplitMix64(seed: seed).split(1)
    let n = labels.count, per = images.count / n
    var order: [Int] = [], position = n
    let warmup = max(1, iterations / 20)
    var smoothed: Float = .nan
    let start = Clock.seconds()

    for iteration in stride(from: 1, through: iterations, by: 1) {
        if position + batchSize > n {                         // new epoch: the remainder is dropped
            order = Array(0..<n)
            order.shuffle(using: &orderRNG)
            position = 0
        }
        let indices = order[position..<(position + batchSize)]
        position += batchSize
        let batch = Tensor(shape: [batchSize] + Array(images.shape.dropFirst())) { out in
            images.storage.withUnsafeBufferPointer { src in
                for (j, i) in indices.enumerated() {
                    (out.baseAddress! + j * per).update(from: src.baseAddress! + i * per, count: per)
                }
            }
        }
        let done = Double(iteration - warmup) / Double(max(1, iterations - warmup))     // cosine phase, 0...1
        optimizer.learningRate = iteration <= warmup
            ? learningRate * Float(iteration) / Float(warmup)
            : learningRate * Float(0.5 * (1 + cos(Double.pi * done)))
        let loss = classifier.logits(batch).crossEntropy(labels: indices.map { labels[$0] })
        let value = loss.scalar
        guard value.isFinite else { throw NonFiniteLoss(iteration: iteration, loss: value) }
        _ = applyGradients(of: loss, to: classifier.parameters, optimizer: &optimizer)
        smoothed = smoothed.isNaN ? value : 0.95 * smoothed + 0.05 * value
        progress?(ClassifierProgress(iteration: iteration, iterations: iterations, loss: value, smoothedLoss: smoothed,
                                     learningRate: optimizer.learningRate, seconds: Clock.seconds() - start))
    }
    let seconds = Clock.seconds() - start
    let accuracy = test.map { classifierAccuracy(classifier, images: $0.images, labels: $0.labels) }
    return ClassifierTrainingResult(classifier: classifier, finalLoss: smoothed, testAccuracy: accuracy, seconds: seconds)
}

/// Fraction of `images` whose arg-max logit is the label. Runs without recording.
public func classifierAccuracy(_ classifier: Classifier, images: Tensor, labels: [Int], batchSize: Int = 500) -> Double {
    precondition(images.rank == 4 && labels.count == images.shape[0] && !labels.isEmpty,
                 "classifierAccuracy: \(labels.count) labels for images \(images.shape)")
    var correct = 0
    forEachBatch(of: images, batchSize: batchSize) { range, batch in
        let logits = Tape.withoutRecording { classifier.logits(batch) }
        let k = logits.shape[1]
        for (row, i) in range.enumerated() {
            var best = 0
            for j in 1..<k where logits.storage[row * k + j] > logits.storage[row * k + best] { best = j }
            if best == labels[i] { correct += 1 }
        }
    }
    return Double(correct) / Double(labels.count)
}

// MARK: - Features and the metric

/// The classifier's 64-d features of `images` (N, C, H, W): (N, 64). Runs without recording, in batches.
public func classifierFeatures(_ classifier: Classifier, images: Tensor, batchSize: Int = 256) -> Tensor {
    precondition(images.rank == 4 && Array(images.shape.dropFirst()) == classifier.sampleShape,
                 "classifierFeatures: images \(images.shape) for a classifier of sample shape \(classifier.sampleShape)")
    let width = Classifier.featureWidth
    var out = [Float]()
    out.reserveCapacity(images.shape[0] * width)
    forEachBatch(of: images, batchSize: batchSize) { _, batch in
        out += Tape.withoutRecording { classifier.features(batch) }.storage
    }
    return Tensor(shape: [images.shape[0], width], storage: out)
}

/// Fréchet distance between Gaussians fitted to the classifier features of `generated` and `reference`
/// (the FID formula of Heusel et al. 2017, with this small classifier in place of Inception).
/// Both sets need at least 2 images; a few hundred or more give a stable value.
public func fidScore(_ classifier: Classifier, generated: Tensor, reference: Tensor) -> Double {
    frechetDistance(classifierFeatures(classifier, images: generated), classifierFeatures(classifier, images: reference))
}

/// Calls `body(indices, images[indices])` over consecutive batches of the first axis.
private func forEachBatch(of images: Tensor, batchSize: Int, _ body: (Range<Int>, Tensor) -> Void) {
    precondition(batchSize >= 1, "batch size \(batchSize)")
    let n = images.shape[0]
    var lo = 0
    while lo < n {
        let hi = min(n, lo + batchSize)
        body(lo..<hi, images.detached().slice(lo..<hi))
        lo = hi
    }
}

// MARK: - Checkpoints

/// What can be wrong with a file given as a classifier checkpoint.
public enum ClassifierError: Error, CustomStringConvertible, Equatable {
    case notAClassifier(path: String, found: String)
    case wrongSampleShape(path: String, found: [Int], expected: [Int], dataset: String)
    case badMetadata(path: String, key: String, value: String)

    public var description: String {
        switch self {
        case let .notAClassifier(path, found):
            return "\(path) is not a classifier checkpoint (\(found))"
        case let .wrongSampleShape(path, found, expected, dataset):
            return "classifier \(path) was trained on \(dataset) images of shape \(found.map(String.init).joined(separator: "x")), "
                + "but these images are \(expected.map(String.init).joined(separator: "x")); "
                + "use a classifier trained on images of this data set"
        case let .badMetadata(path, key, value):
            return "classifier \(path): metadata '\(key)' = '\(value)' is not valid; the file is corrupt or was edited by hand"
        }
    }
}

/// The classifier's weights under their parameter names, with metadata
/// {"kind": "classifier", "dataset", "classes", "sample_shape": "C,H,W", "test_accuracy" (when known)}.
public func classifierCheckpoint(_ classifier: Classifier, dataset: String, testAccuracy: Double?) -> Checkpoint {
    var c = Checkpoint()
    c.append(classifier.parameters)
    c.metadata["kind"] = "classifier"
    c.metadata["dataset"] = dataset
    c.metadata["classes"] = String(classifier.classes)
    c.metadata["sample_shape"] = classifier.sampleShape.map(String.init).joined(separator: ",")
    if let testAccuracy { c.metadata["test_accuracy"] = String(format: "%.4f", testAccuracy) }
    return c
}

/// Reads a classifier written by `classifierCheckpoint` (or `cmkit train-classifier`). With `sampleShape`
/// given, a classifier trained on images of another shape is refused. Throws `ClassifierError` for a
/// checkpoint of something else or bad metadata, `CheckpointError` for an unreadable or incomplete file.
public func loadClassifier(from url: URL, sampleShape expected: [Int]? = nil) throws -> Classifier {
    let c = try Checkpoint.read(from: url)
    let path = url.relativePath
    guard c.metadata["kind"] == "classifier" else {
        let found = c.metadata["kind"].map { "its metadata says kind '\($0)'" }
            ?? c.metadata["config"].map { _ in "it is a consistency-model training checkpoint" }
            ?? "its metadata has no 'kind' entry"
        throw ClassifierError.notAClassifier(path: path, found: found)
    }
    let shapeText = c.metadata["sample_shape"] ?? ""
    let shape = shapeText.split(separator: ",").compactMap { Int($0) }
    guard shape.count == 3, shape.count == shapeText.split(separator: ",").count, shape[0] > 0,
          shape[1] == shape[2], shape[1] >= 4, shape[1] % 4 == 0 else {
        throw ClassifierError.badMetadata(path: path, key: "sample_shape", value: shapeText)
    }
    guard let classes = Int(c.metadata["classes"] ?? ""), classes >= 2 else {
        throw ClassifierError.badMetadata(path: path, key: "classes", value: c.metadata["classes"] ?? "(missing)")
    }
    if let expected, expected != shape {
        throw ClassifierError.wrongSampleShape(path: path, found: shape, expected: expected, dataset: c.metadata["dataset"] ?? "unknown")
    }
    var rng = SplitMix64(seed: 0)         // every parameter is overwritten below
    let classifier = Classifier(channels: shape[0], imageSize: shape[1], classes: classes, rng: &rng)
    try c.load(into: classifier.parameters, model: "classifier")
    return classifier
}

// MARK: - The shipped classifier

/// The asset file name of the classifier for `dataset`: `fmnist-classifier.safetensors` for
/// "fashion-mnist", `<dataset>-classifier.safetensors` otherwise.
public func classifierAssetName(for dataset: String) -> String {
    (dataset == "fashion-mnist" ? "fmnist" : dataset) + "-classifier.safetensors"
}

/// Where `defaultClassifierURL` looks, in order:
/// 1. `$CMKIT_ASSETS/<name>` when the environment variable is set;
/// 2. `./assets/<name>` in the current directory;
/// 3. `<dir>/assets/<name>` for the executable's directory and then each of its parents up to the root
///    (so `.build/release/cmkit` finds the checkout's `assets/`).
public func classifierAssetCandidates(for dataset: String,
                                      environment: [String: String] = ProcessInfo.processInfo.environment,
                                      currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                                      executable: URL? = Bundle.main.executableURL) -> [URL] {
    let name = classifierAssetName(for: dataset)
    var candidates: [URL] = []
    if let dir = environment["CMKIT_ASSETS"], !dir.isEmpty {
        candidates.append(URL(fileURLWithPath: dir).appendingPathComponent(name))
    }
    candidates.append(currentDirectory.appendingPathComponent("assets").appendingPathComponent(name))
    if let executable {
        var dir = executable.resolvingSymlinksInPath().deletingLastPathComponent().standardizedFileURL
        while true {
            candidates.append(dir.appendingPathComponent("assets").appendingPathComponent(name))
            let parent = dir.deletingLastPathComponent().standardizedFileURL
            if parent.path == dir.path { break }
            dir = parent
        }
    }
    return candidates
}

/// The first existing file among `classifierAssetCandidates(for: dataset)`, or nil.
public func defaultClassifierURL(for dataset: String,
                                 environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
    classifierAssetCandidates(for: dataset, environment: environment).first {
        FileManager.default.fileExists(atPath: $0.path)
    }
}
