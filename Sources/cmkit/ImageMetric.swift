// The image metric of `compare`: Frechet distance on the features of a classifier trained on the data set.
import Foundation
import CKTensor
import CKConsistency
import CKDatasets
import CKMetrics

extension QualityMetric {
    static func imageMetric(for spec: DataSpec, classifierPath: String?, referenceCount n: Int) throws -> QualityMetric {
        let dataset = spec.description
        guard let url = classifierPath.map({ URL(fileURLWithPath: $0) }) ?? defaultClassifierURL(for: dataset) else {
            throw CLIError("no classifier for \(dataset) found (looked for \(classifierAssetName(for: dataset)) in $CMKIT_ASSETS, "
                           + "./assets and beside the executable); train one with `cmkit train-classifier --data \(dataset) "
                           + "--out assets/\(classifierAssetName(for: dataset))` or pass --classifier FILE")
        }
        let classifier = try loadClassifier(from: url)
        let reference = try spec.referenceSamples(count: n, seed: 200)
        let second = try spec.referenceSamples(count: n, seed: 201)
        guard reference.shape[0] == n else {
            throw CLIError("the data set has only \(reference.shape[0]) reference images; lower --metric-count")
        }
        let referenceFeatures = classifierFeatures(classifier, images: reference)
        func score(_ images: Tensor) -> [Double] {
            [frechetDistance(classifierFeatures(classifier, images: images.clamped(-1, 1)), referenceFeatures)]
        }
        // Two true sets of the same size share many images for small test splits; still the best floor we have.
        return QualityMetric(name: "Frechet distance on \(url.lastPathComponent) features vs \(n) held-out images",
                             columns: ["fd_classifier"], floor: score(second), evaluate: score)
    }
}
