// cmkit train-autoencoder: the KL autoencoder whose latent space `train --method lct` works in.
import ArgumentParser
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKTraining
import CKDatasets
import CKImageIO

struct TrainAutoencoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-autoencoder",
        abstract: "Train the small KL autoencoder for latent consistency training (--method lct).",
        discussion: """
            Images C x S x S become latents L x S/4 x S/4 (Fashion-MNIST with --latent-channels 4: 4 x 7 x 7). \
            After training, the per-element mean and std of the posterior means over the whole training set are \
            measured and stored with the weights; latent CT works on latents normalised to std 0.5. Writes the \
            checkpoint, and next to it <out>-reconstructions.png (held-out inputs left, reconstructions right). \
            Loss: mean squared error + --kl-weight x KL per latent element.
            """)

    @Option(help: "Training images: fashion-mnist | shapes | folder:PATH.") var data = "fashion-mnist"
    @Option(parsing: .unconditional, help: "Latent channels L.") var latentChannels = 4
    @Option(parsing: .unconditional, help: "Base channel width of the encoder and decoder.") var width = 32
    @Option(parsing: .unconditional, help: "Training iterations.") var iters = 2000
    @Option(parsing: .unconditional, help: "Batch size.") var batch = 64
    @Option(parsing: .unconditional, help: "Adam learning rate.") var lr: Float = 1e-3
    @Option(parsing: .unconditional, help: "Weight of the KL term.") var klWeight: Float = 1e-3
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output checkpoint, e.g. runs/ae.safetensors.") var out: String
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        if latentChannels < 1 { throw ValidationError("--latent-channels must be at least 1.") }
        if width < 8 || width % 8 != 0 { throw ValidationError("--width must be a multiple of 8 (GroupNorm(8)).") }
        if iters < 1 || batch < 1 { throw ValidationError("--iters and --batch must be positive.") }
        if !(lr > 0) || !(klWeight >= 0) { throw ValidationError("--lr must be positive and --kl-weight not negative.") }
    }

    func run() throws {
        threading.apply()
        let spec = try DataSpec(parsing: data)
        guard let images = try spec.trainingImages(seed: seed) else {
            throw CLIError("--data \(data) is a 2-D point set; the autoencoder needs images (fashion-mnist, shapes, folder:PATH)")
        }
        var config = AutoencoderTrainingConfig()
        config.latentChannels = latentChannels
        config.width = width
        config.iterations = iters
        config.batchSize = batch
        config.learningRate = lr
        config.klWeight = klWeight
        config.seed = seed
        let side = images.shape[2] / 4
        note("train-autoencoder: \(spec), \(images.shape[0]) images \(Array(images.shape.dropFirst())) -> latents [\(latentChannels), \(side), \(side)], \(iters) iterations of batch \(batch)")
        let every = max(1, iters / 40)
        let t0 = Clock.seconds()
        let space = try trainAutoencoder(images: images, config: config) { p in
            guard p.iteration % every == 0 || p.iteration == p.iterations else { return }
            note(String(format: "iter %d/%d  reconstruction MSE %.5f  KL %.3f  %.2f it/s  ETA %@", p.iteration, p.iterations,
                        p.reconstruction, p.kl, p.iterationsPerSecond,
                        formatDuration(Double(p.iterations - p.iteration) / p.iterationsPerSecond)))
        }
        let seconds = Clock.seconds() - t0
        let held = try spec.referenceSamples(count: 1000, seed: seed &+ 1)
        let error = reconstructionError(space, images: held)
        var checkpoint = Checkpoint()
        space.append(to: &checkpoint)
        checkpoint.metadata["format"] = LatentSpace.format
        checkpoint.metadata["data"] = spec.description
        checkpoint.metadata["reconstruction_mse"] = String(error)
        checkpoint.metadata["seed"] = String(seed)
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        try checkpoint.write(to: URL(fileURLWithPath: out))

        let shown = held.slice(0..<32)
        let picture = ImageGrid.sideBySide([("INPUT", ImageGrid.bitmap(shown, columns: 8)),
                                            ("RECONSTRUCTION", ImageGrid.bitmap(space.decode(try space.encode(shown)), columns: 8))], scale: 2)
        let pictureURL = URL(fileURLWithPath: out).deletingPathExtension().path + "-reconstructions.png"
        try PNG.write(picture, to: pictureURL)
        print(String(format: "held-out reconstruction MSE %.5f (PSNR %.2f dB on [-1, 1]) over %d images; trained in %@; wrote %@ and %@",
                     error, 10 * log10(4 / error), held.shape[0], formatDuration(seconds), out, pictureURL))
    }
}
