// Points or images: the one place that tells them apart by a sample's shape.

public enum SampleKind: Sendable, Equatable {
    /// 2-D (or d-dimensional) points: a sample of shape [d].
    case points
    /// Images (C, H, W).
    case images

    /// [d] is a point set, anything else an image (C, H, W).
    public init(sampleShape: [Int]) { self = sampleShape.count == 1 ? .points : .images }

    /// The kind of a batch (N, ...) of samples.
    public init(batch: Tensor) { self.init(sampleShape: Array(batch.shape.dropFirst())) }
}
