// The quality measure reported for a data set, one definition for `compare`, `score`, training evaluation
// and the tests: point sets against fresh true points (sliced W2, MMD^2); images by the Fréchet distance
// on the features of a classifier trained on that data set.
import Foundation
import CKTensor
import CKNN
import CKDatasets

public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    /// No classifier file for an image data set.
    case noClassifier(dataset: String, searched: [String])
    /// Fewer held-out samples than the metric asks for.
    case notEnoughReferenceSamples(available: Int, requested: Int)
    /// Samples of another shape than the data set's.
    case sampleShape(found: [Int], expected: [Int])
    /// Samples with NaN or infinite values.
    case nonFiniteSamples(count: Int, total: Int)
    /// Too few samples for a covariance (or any) estimate.
    case tooFewSamples(Int)

    public var description: String {
        switch self {
        case let .noClassifier(dataset, searched):
            return "no classifier for \(dataset) found (looked for \(searched.joined(separator: ", ")))"
        case let .notEnoughReferenceSamples(available, requested):
            return "the data set has only \(available) held-out samples, fewer than the \(requested) asked for"
        case let .sampleShape(found, expected):
            return "the samples have shape \(found), but the data set's are \(expected)"
        case let .nonFiniteSamples(count, total):
            return "\(count) of \(total) sample values are NaN or infinite"
        case let .tooFewSamples(n):
            return "\(n) samples are too few to score; give at least 2"
        }
    }
}

public struct QualityMetric {
    public let name: String
    public let columns: [String]
    /// The same measures between two independent true samples of the same size, when known.
    public let floor: [Double]?
    /// The shape of one sample the metric takes.
    public let sampleShape: [Int]
    let score: (Tensor) -> [Double]
    /// The image metric's classifier (class accuracy of class-conditional samples uses it).
    public let classifier: Classifier?

    /// Scores `samples` (N, sampleShape...) against the reference set; lower is better.
    public func evaluate(_ samples: Tensor) throws -> [Double] {
        let shape = Array(samples.shape.dropFirst())
        guard shape == sampleShape else { throw EvaluationError.sampleShape(found: shape, expected: sampleShape) }
        guard samples.shape[0] >= 2 else { throw EvaluationError.tooFewSamples(samples.shape[0]) }
        let bad = samples.storage.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        guard bad == 0 else { throw EvaluationError.nonFiniteSamples(count: bad, total: samples.count) }
        return score(samples)
    }

    /// The metric for `spec`: `referenceCount` held-out samples (seed 200), and a floor from a second set (seed 201).
    /// Images use `classifier`, or the shipped one for the data set. `classes` reads a folder as class
    /// subfolders; `label` compares against that class's samples only.
    public static func make(for spec: DataSpec, classifier: URL? = nil, referenceCount n: Int, classes: Bool = false,
                            label: Int? = nil) throws -> QualityMetric {
        let reference = try spec.referenceSamples(count: n, seed: 200, classes: classes, label: label)
        guard reference.shape[0] == n else {
            throw EvaluationError.notEnoughReferenceSamples(available: reference.shape[0], requested: n)
        }
        let second = try spec.referenceSamples(count: n, seed: 201, classes: classes, label: label)
        let shape = Array(reference.shape.dropFirst())
        switch SampleKind(sampleShape: shape) {
        case .points:
            func scores(_ a: Tensor) -> [Double] { [slicedWasserstein2(a, reference), mmd2RBF(a, reference).mmd2] }
            return QualityMetric(name: "sliced W2 and MMD^2 (RBF, median bandwidth) vs fresh true points",
                                 columns: ["sliced_w2", "mmd2"], floor: scores(second), sampleShape: shape, score: scores,
                                 classifier: nil)
        case .images:
            let dataset = spec.description
            guard let url = classifier ?? defaultClassifierURL(for: dataset) else {
                throw EvaluationError.noClassifier(dataset: dataset, searched: classifierAssetCandidates(for: dataset).map(\.path))
            }
            let net = try loadClassifier(from: url, sampleShape: shape)
            let referenceFeatures = classifierFeatures(net, images: reference)
            func score(_ images: Tensor) -> [Double] {
                [frechetDistance(classifierFeatures(net, images: images.clamped(-1, 1)), referenceFeatures)]
            }
            // Two true sets of the same size share many images for small test splits; still the best floor we have.
            return QualityMetric(name: "Frechet distance on \(url.lastPathComponent) features vs \(n) held-out images",
                                 columns: ["fd_classifier"], floor: score(second), sampleShape: shape, score: score,
                                 classifier: net)
        }
    }
}

extension QualityMetric {
    /// How often the metric's classifier puts each sample in the class it was asked for (nil without a
    /// classifier, or with one that knows another number of classes than `classCount`).
    public func classAccuracy(_ samples: Tensor, labels: [Int], classCount: Int) -> Double? {
        guard let classifier, classifier.classes == classCount else { return nil }
        return classifierAccuracy(classifier, images: samples.clamped(-1, 1), labels: labels)
    }
}
