// Training the latent CT autoencoder: Adam on reconstruction + a small KL term, then the latent statistics.
import CKTensor
import CKNN

public struct AutoencoderTrainingConfig: Sendable {
    public var latentChannels = 4, width = 32
    public var iterations = 2000, batchSize = 64
    public var learningRate: Float = 1e-3
    /// Small, as latent diffusion's: enough to keep the posterior near N(0, I) in scale, not to blur.
    public var klWeight: Float = 1e-3
    public var seed: UInt64 = 0
    public init() {}
}

public struct AutoencoderProgress: Sendable {
    public let iteration: Int, iterations: Int
    public let reconstruction: Float, kl: Float
    public let iterationsPerSecond: Double
}

/// Trains an autoencoder on `images` (N, C, S, S) in [-1, 1]; batch k is drawn from (seed, k).
/// Returns it with the statistics of its posterior means over all of `images`.
public func trainAutoencoder(images: Tensor, config: AutoencoderTrainingConfig,
                             progress: (AutoencoderProgress) -> Void = { _ in }) throws -> LatentSpace {
    let n = images.shape[0]
    guard images.rank == 4, images.shape[2] == images.shape[3], images.shape[2] % 4 == 0 else {
        throw TrainingError.autoencoderNeedsSquareImages(shape: Array(images.shape.dropFirst()))
    }
    guard config.batchSize <= n else {
        throw TrainingError.batchLargerThanData(batch: config.batchSize, count: n)
    }
    var initRNG = SplitMix64(seed: config.seed)
    let autoencoder = Autoencoder(channels: images.shape[1], imageSize: images.shape[2], latentChannels: config.latentChannels,
                                  width: config.width, rng: &initRNG)
    var optimizer = Adam(parameters: autoencoder.parameters, learningRate: config.learningRate)
    let start = Clock.seconds()
    var smoothedReconstruction: Float = .nan, smoothedKL: Float = .nan
    for k in 0..<config.iterations {
        var rng = SplitMix64(seed: config.seed).split(UInt64(k) &+ 0xAE00)
        let indices = (0..<config.batchSize).map { _ in Int(rng.next() % UInt64(n)) }
        let batch = reorderedRows(images, indices)
        let loss = autoencoderLoss(autoencoder, batch: batch, klWeight: config.klWeight, rng: &rng)
        guard loss.total.scalar.isFinite else { throw NonFiniteLoss(iteration: k, loss: loss.total.scalar) }
        _ = applyGradients(of: loss.total, to: autoencoder.parameters, optimizer: &optimizer)
        smoothedReconstruction = smoothedReconstruction.isNaN ? loss.reconstruction : 0.95 * smoothedReconstruction + 0.05 * loss.reconstruction
        smoothedKL = smoothedKL.isNaN ? loss.kl : 0.95 * smoothedKL + 0.05 * loss.kl
        progress(AutoencoderProgress(iteration: k + 1, iterations: config.iterations, reconstruction: smoothedReconstruction,
                                     kl: smoothedKL, iterationsPerSecond: Double(k + 1) / max(Clock.seconds() - start, 1e-9)))
    }
    return LatentSpace.measuring(autoencoder, over: images)
}

/// Mean squared error per pixel of encode (posterior mean) then decode, over `images`.
public func reconstructionError(_ space: LatentSpace, images: Tensor) -> Double {
    let back = space.decode(space.encodeChecked(images))
    var total = 0.0
    for i in 0..<images.count { let d = Double(back.storage[i] - images.storage[i]); total += d * d }
    return total / Double(images.count)
}
