// Scoring edits against the true images: the mean squared error where the model had to supply something (the filled
// pixels of inpainting; every pixel for the other tasks), beside a baseline made from the same inputs without a model.
import CKTensor

/// The error of a set of edit results and of the task's baseline, in the data's units ([-1, 1] for images).
public struct EditScore: Equatable, Sendable {
    /// Mean squared error of the results against their true images, over `scoredElements` elements of each result.
    public let mse: Double
    /// The same error of each input's mean result (nil for one variation). A mean of samples estimates the posterior
    /// mean, the least-squares answer; a single sample, even an exact posterior draw, has twice the posterior variance
    /// as its expected error, so this is the figure to hold against a baseline that is itself a mean.
    public let variationMeanMSE: Double?
    /// The same error of the baseline; nil when the task's baseline needs data that was not given (the training mean).
    public let baselineMSE: Double?
    /// Elements of one image the errors average over (channels included).
    public let scoredElements: Int
}

extension EditTask {
    /// What the baseline is, for tables and messages.
    public var baselineName: String {
        switch self {
        case .inpaint: return "training-mean fill"
        case .superResolution: return "nearest-neighbour block means"
        case .colorize: return "gray"
        case .denoise: return "noisy input"
        }
    }

    /// Which elements the score averages over, for tables and messages.
    public var scoredRegion: String {
        if case .inpaint = self { return "filled pixels" } else { return "all pixels" }
    }

    /// What the inputs give without a model: inpainting fills the unknown pixels with `trainingMean` (C, H, W) (nil
    /// without it); super-resolution repeats each block mean over its block (A⁺y, the "BLOCK MEANS" panel);
    /// colorization shows the luminance in R, G and B; denoising keeps the noisy input.
    public func baseline(_ inputs: Tensor, sampleShape: [Int], trainingMean: Tensor?) throws -> Tensor? {
        switch self {
        case .inpaint:
            guard let trainingMean, let op = try makeOperator(sampleShape: sampleShape) else { return nil }
            precondition(trainingMean.shape == sampleShape, "EditTask.baseline: mean \(trainingMean.shape) for samples \(sampleShape)")
            return op.filled(with: trainingMean, onto: op.apply(inputs))
        case .superResolution:
            return try degraded(inputs, sampleShape: sampleShape)
        case .colorize:
            let gray = inputs.shape[1] == 1 ? inputs : Luminance.luminance(inputs)      // (N, 1, H, W)
            return Tensor.concatenate([gray, gray, gray], axis: 1)
        case .denoise:
            return inputs
        }
    }

    /// Scores `results` ((N * variations, C, H, W), image-major, as `edit` returns them for `inputs`) against
    /// `reference`, the N true images the inputs came from, and the baseline of the same inputs against it.
    /// Inpainting scores only the elements the mask fills; the known ones are copied and would only dilute the error.
    public func score(_ results: Tensor, variations: Int, inputs: Tensor, reference: Tensor, trainingMean: Tensor? = nil) throws -> EditScore {
        let n = inputs.shape[0]
        let sampleShape = Array(results.shape.dropFirst())
        precondition(variations >= 1 && results.shape[0] == n * variations,
                     "EditTask.score: \(results.shape[0]) results for \(n) inputs x \(variations) variations")
        try check(reference: reference, inputCount: n, sampleShape: sampleShape)
        let scored = try scoredElements(sampleShape: sampleShape)
        let count = scored.reduce(0) { $0 + ($1 ? 1 : 0) }
        let base = try baseline(inputs, sampleShape: sampleShape, trainingMean: trainingMean)
        let means = variations == 1 ? nil : meanOfVariations(results, variations: variations)
        return EditScore(mse: meanSquaredError(results, against: reference, repeats: variations, scored: scored),
                         variationMeanMSE: means.map { meanSquaredError($0, against: reference, repeats: 1, scored: scored) },
                         baselineMSE: base.map { meanSquaredError($0, against: reference, repeats: 1, scored: scored) },
                         scoredElements: count)
    }

    /// Refuses reference images that cannot be the true images of `inputCount` inputs to a model of `sampleShape`, and a
    /// mask that leaves nothing to score; callable before the edit runs, so a wrong file costs no sampling.
    public func check(reference: Tensor, inputCount: Int, sampleShape: [Int]) throws {
        guard reference.rank == sampleShape.count + 1, Array(reference.shape.dropFirst()) == sampleShape else {
            throw EditError.referenceShape(reference: Array(reference.shape.dropFirst()), samples: sampleShape)
        }
        guard reference.shape[0] == inputCount else { throw EditError.referenceCount(reference: reference.shape[0], images: inputCount) }
        guard try scoredElements(sampleShape: sampleShape).contains(true) else { throw EditError.nothingToScore }
    }

    /// Per element of one sample: whether the score counts it (inpainting: where the mask is 0).
    private func scoredElements(sampleShape: [Int]) throws -> [Bool] {
        let per = sampleShape.reduce(1, *)
        guard case .inpaint = self, let op = try makeOperator(sampleShape: sampleShape) else { return Array(repeating: true, count: per) }
        // A of an all-ones sample is the mask over every channel: 1 where known.
        return op.apply(Tensor(repeating: 1, shape: [1] + sampleShape)).storage.map { $0 == 0 }
    }
}

/// Mean of (x − reference)² over the scored elements of every row of `x`, row r compared with reference row
/// r / repeats; summed in Double.
func meanSquaredError(_ x: Tensor, against reference: Tensor, repeats: Int, scored: [Bool]) -> Double {
    let per = scored.count
    precondition(x.count == x.shape[0] * per && x.shape[0] == reference.shape[0] * repeats,
                 "meanSquaredError: \(x.shape) against \(reference.shape) x \(repeats)")
    var sum = 0.0, terms = 0
    for r in 0..<x.shape[0] {
        let (row, truth) = (r * per, (r / repeats) * per)
        for e in 0..<per where scored[e] {
            let d = Double(x.storage[row + e]) - Double(reference.storage[truth + e])
            sum += d * d
            terms += 1
        }
    }
    return sum / Double(max(terms, 1))
}

/// The mean of each run of `variations` consecutive rows: (N * variations, ...) -> (N, ...).
func meanOfVariations(_ x: Tensor, variations: Int) -> Tensor {
    let (n, per) = (x.shape[0] / variations, x.count / x.shape[0])
    var out = [Float](repeating: 0, count: n * per)
    for i in 0..<n {
        for e in 0..<per {
            var sum = 0.0
            for v in 0..<variations { sum += Double(x.storage[(i * variations + v) * per + e]) }
            out[i * per + e] = Float(sum / Double(variations))
        }
    }
    return Tensor(shape: [n] + x.shape.dropFirst(), storage: out)
}

extension EditScore {
    /// The mean image of `images` (N, C, H, W) -> (C, H, W), summed in Double (60,000 Fashion-MNIST images in Float
    /// would lose the last digits).
    public static func meanImage(_ images: Tensor) -> Tensor {
        precondition(images.rank >= 2 && images.shape[0] >= 1, "EditScore.meanImage: needs (N, ...) with N >= 1, got \(images.shape)")
        let (n, per) = (images.shape[0], images.count / images.shape[0])
        var sums = [Double](repeating: 0, count: per)
        for i in 0..<n { for e in 0..<per { sums[e] += Double(images.storage[i * per + e]) } }
        return Tensor(shape: Array(images.shape.dropFirst()), storage: sums.map { Float($0 / Double(n)) })
    }
}
