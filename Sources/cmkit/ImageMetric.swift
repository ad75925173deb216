// Placeholder until the classifier lands: images get no metric yet.
import CKDatasets
extension QualityMetric {
    static func imageMetric(for spec: DataSpec, classifierPath: String?, referenceCount n: Int) throws -> QualityMetric {
        throw CLIError("the image metric needs a classifier (`cmkit train-classifier`), not yet available")
    }
}
