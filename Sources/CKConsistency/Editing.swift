// Zero-shot editing with a trained consistency model (Song et al. 2023, "Consistency Models", Algorithm 4):
// inpainting, super-resolution, colorization and denoising with the model's own multistep sampler, and
// interpolation between the noises of two seeds. Operators: EditOperators.swift.
import Glibc
import CKTensor
import CKNN

public enum EditError: Error, CustomStringConvertible, Equatable {
    case imageShape(images: [Int], model: [Int])
    case maskShape(mask: [Int], samples: [Int])
    case maskNotBinary(otherValues: Int, total: Int)
    case factorDoesNotDivide(factor: Int, height: Int, width: Int)
    case needsColor(channels: Int)
    case needsImages(sampleShape: [Int])
    case latentModel(method: String)
    case notConsistencyModel(method: String)
    case noImages
    case badVariations(Int)
    case badInterpolationCount(Int)
    case referenceShape(reference: [Int], samples: [Int])
    case referenceCount(reference: Int, images: Int)
    case nothingToScore

    public var description: String {
        func size(_ s: [Int]) -> String { s.map(String.init).joined(separator: "x") }
        switch self {
        case let .imageShape(images, model):
            return "the images are \(size(images)) (channels x height x width), but the model makes \(size(model)) images; "
                + "give images of the model's size and channels"
        case let .maskShape(mask, samples):
            return "the mask is \(size(mask)), but the images are \(size(samples)); give a mask of the images' height and width "
                + "(one channel, or one per image channel)"
        case let .maskNotBinary(other, total):
            return "the mask has \(other) of \(total) values that are neither black nor white; make every pixel black "
                + "(to fill) or white (to keep), e.g. threshold it at 50%"
        case let .factorDoesNotDivide(factor, h, w):
            return "factor \(factor) does not divide the \(w)x\(h) images; use a factor of at least 2 that divides both sides (e.g. 2 or 4)"
        case .needsColor(let c):
            return "colorization needs a model of RGB images, but this model makes \(c)-channel images"
        case .needsImages(let shape):
            return "this edit needs an image model (C, H, W), but the model makes samples of shape \(shape)"
        case .latentModel(let method):
            return "editing a latent model (method \(method)) is not supported yet: the known pixels live in image space and the "
                + "model in the autoencoder's latent space; interpolation works"
        case .notConsistencyModel(let method):
            return "editing needs a consistency model (ict, ect, ctm), but this checkpoint was trained with method \(method) "
                + "(a denoiser sampled by Heun); tune it into one with ect or ctm"
        case .noImages: return "no images to edit"
        case .badVariations(let n): return "\(n) variations: ask for at least 1"
        case .badInterpolationCount(let n): return "\(n) interpolation points: ask for at least 2 (the two ends)"
        case let .referenceShape(reference, samples):
            return "the reference images are \(size(reference)), but the results are \(size(samples)); give the true images "
                + "the inputs came from, at the model's size and channels"
        case let .referenceCount(reference, images):
            return "\(reference) reference image\(reference == 1 ? "" : "s") for \(images) input\(images == 1 ? "" : "s"); "
                + "give one true image per input, in the same order"
        case .nothingToScore:
            return "the mask keeps every pixel, so nothing was filled to score; make the pixels to fill black"
        }
    }
}

/// What is known of the images to edit.
public enum EditTask {
    /// Keep the elements where `mask` is 1 ((1, H, W) for all channels, or the sample shape), fill the rest.
    case inpaint(mask: Tensor)
    /// Keep the mean of every factor x factor block, fill in the detail.
    case superResolution(factor: Int)
    /// Keep the luminance, fill in the colour (RGB models; gray inputs are taken as the luminance).
    case colorize
    /// The inputs are noisy at level `sigma`: the chain starts there from the inputs themselves, no projection.
    case denoise(sigma: Float)

    /// The observation operator for samples of `sampleShape` (nil for denoising); errors for a mask, factor or
    /// model that does not fit.
    public func makeOperator(sampleShape: [Int]) throws -> (any EditOperator)? {
        switch self {
        case .inpaint(let mask): return try Inpainting(mask: mask, sampleShape: sampleShape)
        case .superResolution(let factor): return try BlockAveraging(factor: factor, sampleShape: sampleShape)
        case .colorize: return try Luminance(sampleShape: sampleShape)
        case .denoise: return nil
        }
    }

    /// Colorization takes gray inputs (N, 1, H, W) as the luminance of an RGB model's images.
    func acceptsGray(for sampleShape: [Int]) -> Bool {
        if case .colorize = self { return sampleShape.count == 3 && sampleShape[0] == 3 } else { return false }
    }

    /// What is known, as a picture of the inputs: known elements with the rest at 0 (inpainting), the block means
    /// (super-resolution), the luminance as gray (colorization); nil for denoising (the inputs are the degraded ones).
    public func degraded(_ images: Tensor, sampleShape: [Int]) throws -> Tensor? {
        guard let op = try makeOperator(sampleShape: sampleShape) else { return nil }
        if case .colorize = self { return images.shape[1] == 1 ? images : Luminance.luminance(images) }
        return op.pseudoInverse(op.apply(images))
    }

    /// y = A x of the inputs; gray inputs to colorization are their luminance.
    func observation(of images: Tensor, operator op: any EditOperator) -> Tensor {
        if case .colorize = self, images.shape[1] == 1 { return Luminance.observation(ofGray: images) }
        return op.apply(images)
    }
}

extension TrainedModel {
    /// Edits `images` (N, C, H, W) in the model's data range: `variations` results per image, image-major
    /// ((N * variations, C, H, W)). Variation v of image i draws its noise from `SplitMix64(seed: seed).split(i).split(v)`,
    /// so it is the same for any number of images or variations (up to BLAS blocking in the last bits).
    ///
    /// Consistency sampling (iCT, ECT), CM Algorithm 4: x = A⁺y + tau_1 z; then at each level tau_m of the plan,
    /// x = f(x, tau_m), clipped to [-1, 1] (images, as openai/consistency_models' `iterative_*`), projected onto y
    /// (x + A⁺(y − A x)), and re-noised by sqrt(tau_{m+1}^2 − sigma_min^2) towards the next level.
    /// CTM: the plan's gamma jumps G(x, t, s) from the same start; after each jump the known part is set to
    /// y + (s / t)(A x_t − y), the value a jump whose clean estimate has observation y lands on (G = g + (s / t)(x − g)),
    /// so it carries the start's noise down to s; the end is clipped and projected onto y exactly.
    /// Denoising starts the chain at `sigma` from the inputs themselves (levels: a Karras grid from sigma to sigma_min,
    /// `plan.steps` of them).
    /// `prior` (one image of the model's shape, e.g. the training mean) fills what the observation leaves open in the
    /// start: A⁺y + (I − A⁺A) prior instead of A⁺y. It matters when the chain starts low enough for the start to survive.
    public func edit(_ images: Tensor, task: EditTask, plan: SamplingPlan, variations: Int = 1, seed: UInt64 = 0,
                     prior: Tensor? = nil) throws -> Tensor {
        let sampleShape = config.sampleShape
        if latentSpace != nil { throw EditError.latentModel(method: config.method.rawValue) }
        guard plan.kind != .heun else { throw EditError.notConsistencyModel(method: config.method.rawValue) }
        guard images.rank == sampleShape.count + 1, images.shape[0] >= 1 else {
            throw images.count == 0 ? EditError.noImages : EditError.imageShape(images: Array(images.shape.dropFirst()), model: sampleShape)
        }
        let inputShape = Array(images.shape.dropFirst())
        let grayForColor = task.acceptsGray(for: sampleShape) && inputShape == [1] + sampleShape.dropFirst()
        guard inputShape == sampleShape || grayForColor else { throw EditError.imageShape(images: inputShape, model: sampleShape) }
        guard variations >= 1 else { throw EditError.badVariations(variations) }
        let op = try task.makeOperator(sampleShape: sampleShape)
        let plan = plan.adapted(to: context)
        try plan.validate()

        let p = Preconditioning()
        var startSigma: Float? = nil
        if case .denoise(let sigma) = task {
            try validateSigmas([sigma], sigmaMin: p.sigmaMin)
            startSigma = sigma
        }
        let levels = try editLevels(plan, startingAt: startSigma, sigmaMin: p.sigmaMin)
        let observations = op.map { task.observation(of: images, operator: $0) }
        var starts = op.map { $0.pseudoInverse(observations!) } ?? images
        if let op, let prior, let y = observations {
            precondition(prior.shape == sampleShape, "edit: prior \(prior.shape) for a model of \(sampleShape)")
            starts = op.filled(with: prior, onto: y)
        }
        let n = images.shape[0]
        let root = SplitMix64(seed: seed)
        let generators = (0..<(n * variations)).map { root.split(UInt64($0 / variations)).split(UInt64($0 % variations)) }
        let isImage = sampleShape.count == 3
        func clip(_ x: Tensor) -> Tensor { isImage ? x.clamped(-1, 1) : x }

        let edited = runInBatches(shape: sampleShape, generators: generators, batchSize: 256) { noise, rows in
            let inputRows = rows.map { $0 / variations }
            let y = observations.map { gatherRows($0, inputRows) }
            let base = gatherRows(starts, inputRows)
            let start = startSigma == nil ? base + noise() * levels[0] : base
            func known(_ x: Tensor) -> Tensor { if let op, let y { return op.project(x, onto: y) } else { return x } }
            switch plan.kind {
            case .consistency:
                return consistencyChain(start: start, sigmas: levels, sigmaMin: p.sigmaMin, noise: &noise,
                                        f: p.consistencyFunction(network, boundary: plan.boundary), constrain: { known(clip($0)) })
            case .ctm:
                let x = ctmChain(network: network, start: start, levels: levels, gamma: plan.gamma, noise: &noise, preconditioning: p) {
                    before, after, t, s in
                    guard let op, let y else { return after }
                    return after + op.pseudoInverse(y + (op.apply(before) - y) * (s / t) - op.apply(after))
                }
                return known(x)           // the chain clipped images at its end
            case .heun:
                preconditionFailure("edit: Heun was refused above")
            }
        }
        return try plan.decodedAndChecked(edited, context: context)
    }

    /// `count` samples along the great circle between the noises of `seeds` (every draw of the chain slerped with the
    /// same fraction k / (count - 1)), so the ends are sample 0 of `sample(plan, count: 1, seed:)` for each seed, bit for
    /// bit. Each point is computed alone, as a batch of one. Works for every model, latent ones included.
    public func interpolate(_ plan: SamplingPlan, seeds: (UInt64, UInt64), count: Int) throws -> Tensor {
        guard count >= 2 else { throw EditError.badInterpolationCount(count) }
        let plan = plan.adapted(to: context)
        try plan.validate()
        let p = Preconditioning()
        let ctmTimes = plan.kind == .ctm ? try plan.ctmTimes(sigmaMin: p.sigmaMin) : []
        let shape = network.sampleShape
        var points = [Float]()
        for k in 0..<count {
            var noise = SlerpNoise(from: SampleNoise(generators: [SplitMix64(seed: seeds.0).split(0)], shape: shape),
                                   to: SampleNoise(generators: [SplitMix64(seed: seeds.1).split(0)], shape: shape),
                                   fraction: Double(k) / Double(count - 1))
            let point = Tape.withoutRecording { plan.chain(network: network, noise: &noise, ctmTimes: ctmTimes, preconditioning: p) }
            points += try plan.decodedAndChecked(point, context: context).storage      // decoded alone too
        }
        return Tensor(shape: [count] + outputShape, storage: points)
    }
}

extension EditTask {
    /// Where inpainting, super-resolution and colorization start by default. From σ_max (the paper's start) the known
    /// part is lost in the noise and one or two steps give a sample with it pasted in; from 1.5, with the unknown part
    /// filled by the training mean, the start survives and the model fills the gap to fit it. Measured on 16 and 64
    /// Fashion-MNIST test images (walkthrough 07): below the training-mean fill's error at 1 and 2 steps, centre and half masks.
    public static let defaultStartSigma: Float = 1.5

    /// The levels of an edit of `steps` steps from `start`: start, start / 4, start / 16, ..., spread geometrically
    /// down to 0.02 instead when a quarter each time would go below it (long chains).
    public static func levels(steps: Int, startingAt start: Float) -> [Float] {
        let ratio = steps > 1 ? max(0.25, powf(min(1, 0.02 / start), 1 / Float(steps - 1))) : 1
        return (0..<max(1, steps)).map { start * powf(ratio, Float($0)) }
    }
}

/// The levels an edit visits: the plan's (consistency levels; CTM jump times ending at sigma_min), or from a
/// denoising start `sigma` a Karras grid of steps + 1 points down to sigma_min (CTM's default grid with sigma as its top),
/// without sigma_min for consistency sampling.
func editLevels(_ plan: SamplingPlan, startingAt sigma: Float?, sigmaMin: Float) throws -> [Float] {
    guard let sigma else { return plan.kind == .ctm ? try plan.ctmTimes(sigmaMin: sigmaMin) : plan.levels }
    let below = karrasSigmas(count: plan.steps + 1, sigmaMin: Double(sigmaMin), sigmaMax: Double(sigma)).reversed().map { Float($0) }
    let levels = [sigma] + below.dropFirst()
    if plan.kind == .ctm { return levels }
    let chain = Array(levels.dropLast())
    try validateSigmas(chain, sigmaMin: sigmaMin)
    return chain
}

/// Rows `indices` of `t` along its first axis.
func gatherRows(_ t: Tensor, _ indices: [Int]) -> Tensor {
    let per = t.shape.dropFirst().reduce(1, *)
    var values = [Float]()
    values.reserveCapacity(indices.count * per)
    for i in indices { values += t.storage[(i * per)..<((i + 1) * per)] }
    return Tensor(shape: [indices.count] + t.shape.dropFirst(), storage: values)
}

/// Noise on the great circle between two streams: every draw is slerp(a, b, fraction) of the two streams' next draws
/// (Shoemake 1985), exactly a at fraction 0 and b at fraction 1.
struct SlerpNoise: NoiseSource {
    var from: SampleNoise, to: SampleNoise
    let fraction: Double
    var count: Int { from.count }

    mutating func callAsFunction() -> Tensor {
        let a = from(), b = to()
        if fraction == 0 { return a }
        if fraction == 1 { return b }
        let per = a.shape.dropFirst().reduce(1, *)
        var out = [Float](repeating: 0, count: a.count)
        for row in 0..<a.shape[0] {
            let range = (row * per)..<((row + 1) * per)
            var dot = 0.0, na = 0.0, nb = 0.0
            for i in range {
                let (u, v) = (Double(a.storage[i]), Double(b.storage[i]))
                dot += u * v; na += u * u; nb += v * v
            }
            let theta = acos(max(-1, min(1, dot / (na * nb).squareRoot())))
            // Nearly parallel draws: the straight line is the arc.
            let (ca, cb) = sin(theta) < 1e-6 ? (1 - fraction, fraction)
                : (sin((1 - fraction) * theta) / sin(theta), sin(fraction * theta) / sin(theta))
            for i in range { out[i] = Float(ca * Double(a.storage[i]) + cb * Double(b.storage[i])) }
        }
        return Tensor(shape: a.shape, storage: out)
    }
}
