// The latent space of latent CT: a trained autoencoder, its per-element latent statistics, the
// normalisation to std 0.5 (= sigma_data) and back, and the autoencoder's own training loss.
import Foundation
import CKTensor
import CKNN

/// Per-element mean and std of the posterior means over a data set (algorithms.md 2.6):
/// x = (z - m) / s * 0.5, and back z = x * s / 0.5 + m.
public struct LatentStatistics {
    public let mean: Tensor, std: Tensor        // each (L, h, w)

    public init(mean: Tensor, std: Tensor) {
        precondition(mean.shape == std.shape, "LatentStatistics: mean \(mean.shape) vs std \(std.shape)")
        self.mean = mean
        self.std = std
    }

    /// Mean and unbiased std per element over `latents` (N, L, h, w), accumulated in Double.
    public static func measure(_ latents: Tensor) -> LatentStatistics {
        let n = latents.shape[0], per = latents.count / n
        var sum = [Double](repeating: 0, count: per), sumSquares = [Double](repeating: 0, count: per)
        for b in 0..<n {
            for j in 0..<per {
                let v = Double(latents.storage[b * per + j])
                sum[j] += v
                sumSquares[j] += v * v
            }
        }
        let mean = sum.map { $0 / Double(n) }
        let std = (0..<per).map { j in ((sumSquares[j] - Double(n) * mean[j] * mean[j]) / Double(max(n - 1, 1))).squareRoot() }
        let shape = Array(latents.shape.dropFirst())
        // A dead latent element (std 0) would divide by zero; it carries no information, so scale it by 1.
        return LatentStatistics(mean: Tensor(shape: shape, storage: mean.map(Float.init)),
                                std: Tensor(shape: shape, storage: std.map { Float($0 > 1e-8 ? $0 : 1) }))
    }

    public func normalize(_ z: Tensor) -> Tensor { (z - mean) / std * 0.5 }
    public func denormalize(_ x: Tensor) -> Tensor { x * std * 2 + mean }
}

/// An autoencoder with the statistics of its latents: images <-> normalised latents.
public struct LatentSpace {
    public let autoencoder: Autoencoder
    public let statistics: LatentStatistics

    public init(autoencoder: Autoencoder, statistics: LatentStatistics) {
        self.autoencoder = autoencoder
        self.statistics = statistics
    }

    /// Normalised latents (posterior means) of `images`, in batches, without recording. Images of another
    /// shape than the autoencoder's are an error.
    public func encode(_ images: Tensor, batchSize: Int = 500) throws -> Tensor {
        let shape = Array(images.shape.dropFirst())
        guard shape == autoencoder.imageShape else { throw TrainingError.autoencoderImageShape(autoencoder: autoencoder.imageShape, data: shape) }
        return encodeChecked(images, batchSize: batchSize)
    }

    func encodeChecked(_ images: Tensor, batchSize: Int = 500) -> Tensor {
        Self.posteriorMeans(autoencoder, images, batchSize: batchSize) { statistics.normalize($0) }
    }

    /// Images of normalised latents, in batches, without recording.
    public func decode(_ latents: Tensor, batchSize: Int = 500) -> Tensor {
        let n = latents.shape[0]
        var out: [Float] = []
        out.reserveCapacity(n * autoencoder.imageShape.reduce(1, *))
        for start in stride(from: 0, to: n, by: batchSize) {
            let z = latents.slice(start..<min(n, start + batchSize))
            out += Tape.withoutRecording { autoencoder.decode(statistics.denormalize(z)) }.storage
        }
        return Tensor(shape: [n] + autoencoder.imageShape, storage: out)
    }

    static func posteriorMeans(_ autoencoder: Autoencoder, _ images: Tensor, batchSize: Int,
                               _ transform: (Tensor) -> Tensor = { $0 }) -> Tensor {
        let n = images.shape[0]
        var out: [Float] = []
        out.reserveCapacity(n * autoencoder.latentShape.reduce(1, *))
        for start in stride(from: 0, to: n, by: batchSize) {
            let x = images.slice(start..<min(n, start + batchSize))
            out += Tape.withoutRecording { transform(autoencoder.encode(x).mean) }.storage
        }
        return Tensor(shape: [n] + autoencoder.latentShape, storage: out)
    }

    /// Measures the statistics of `autoencoder`'s posterior means over `images`.
    public static func measuring(_ autoencoder: Autoencoder, over images: Tensor) -> LatentSpace {
        LatentSpace(autoencoder: autoencoder, statistics: .measure(posteriorMeans(autoencoder, images, batchSize: 500)))
    }
}

public struct AutoencoderLoss {
    public let total: Tensor               // on the graph
    public let reconstruction: Float       // mean squared error per pixel
    public let kl: Float                   // KL(q(z|x) || N(0, I)) per latent element
}

/// mean_j (decode(z) - x)^2 + klWeight * KL per latent element, z = mu + exp(logvar / 2) eps
/// (the reparametrisation: the gradient reaches the encoder through mu and logvar).
public func autoencoderLoss(_ autoencoder: Autoencoder, batch x: Tensor, klWeight: Float,
                            rng: inout some RandomNumberGenerator) -> AutoencoderLoss {
    let (mu, logVariance) = autoencoder.encode(x)
    let z = mu + (logVariance * 0.5).exp() * Tensor.normal(like: mu, rng: &rng)
    let reconstruction = (autoencoder.decode(z) - x).squared().mean()
    let kl = ((mu.squared() + logVariance.exp() - logVariance) - 1).mean() * 0.5
    return AutoencoderLoss(total: reconstruction + kl * klWeight, reconstruction: reconstruction.scalar, kl: kl.scalar)
}

// MARK: - Checkpoints

extension LatentSpace {
    public static let format = "consistencykit-autoencoder-1"

    /// Weights under `prefix` (e.g. "autoencoder." inside a latent CT checkpoint), statistics as
    /// `<prefix>latent.mean` / `<prefix>latent.std`, and the architecture in the metadata.
    public func append(to checkpoint: inout Checkpoint, prefix: String = "") {
        checkpoint.append(autoencoder.parameters, prefix: prefix)
        checkpoint.append([(prefix + "latent.mean", statistics.mean), (prefix + "latent.std", statistics.std)])
        let a = autoencoder
        checkpoint.metadata[prefix + "autoencoder"] = "\(a.channels),\(a.imageSize),\(a.latentChannels),\(a.width)"
    }

    /// Rebuilds what `append(to:prefix:)` stored; errors name the file and what is missing.
    public static func load(from checkpoint: Checkpoint, prefix: String = "", path: String) throws -> LatentSpace {
        let fields = (checkpoint.metadata[prefix + "autoencoder"] ?? "").split(separator: ",").compactMap { Int($0) }
        guard fields.count == 4 else {
            throw TrainingError.noAutoencoder(path: path)
        }
        var rng = SplitMix64(seed: 0)
        let autoencoder = Autoencoder(channels: fields[0], imageSize: fields[1], latentChannels: fields[2], width: fields[3], rng: &rng)
        try checkpoint.load(into: autoencoder.parameters, prefix: prefix, model: "autoencoder")
        let shape = autoencoder.latentShape
        let statistics = LatentStatistics(mean: try checkpoint.requireTensor(prefix + "latent.mean", shape: shape),
                                          std: try checkpoint.requireTensor(prefix + "latent.std", shape: shape))
        return LatentSpace(autoencoder: autoencoder, statistics: statistics)
    }
}
