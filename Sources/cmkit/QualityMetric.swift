// The quality measures `compare` reports: toy sets against fresh true points; images through a classifier.
import Foundation
import CKTensor
import CKDatasets
import CKMetrics

struct QualityMetric {
    let name: String
    let columns: [String]
    /// The same measures between two independent true samples, when known.
    let floor: [Double]?
    let evaluate: (Tensor) -> [Double]

    static func make(for spec: DataSpec, isPoints: Bool, classifierPath: String?, referenceCount n: Int) throws -> QualityMetric {
        if isPoints {
            let reference = try spec.referenceSamples(count: n, seed: 200)
            let second = try spec.referenceSamples(count: n, seed: 201)
            func scores(_ a: Tensor) -> [Double] { [slicedWasserstein2(a, reference), mmd2RBF(a, reference).mmd2] }
            return QualityMetric(name: "sliced W2 and MMD^2 (RBF, median bandwidth) vs fresh true points",
                                 columns: ["sliced_w2", "mmd2"], floor: scores(second), evaluate: scores)
        }
        return try imageMetric(for: spec, classifierPath: classifierPath, referenceCount: n)
    }
}
