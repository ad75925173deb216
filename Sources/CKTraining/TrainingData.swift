// The data a run's network sees: the data set itself, or for a latent method its normalised latents,
// encoded once.
import Foundation
import CKTensor
import CKConsistency
import CKDatasets

extension Trainer {
    /// Opens the run's data; `note` hears about slow preparation (encoding latents).
    public func trainingData(note: (String) -> Void = { _ in }) throws -> any Dataset {
        let spec = try DataSpec(parsing: config.data)
        guard let space = method.latentSpace else { return try spec.open() }
        guard let images = try spec.trainingImages(seed: config.seed) else {
            throw TrainingError.needsImages(method: config.method, data: spec.description)
        }
        let t0 = Clock.seconds()
        let latents = try space.encode(images)
        note(String(format: "encoded %d training images to latents %@ in %.1f s", images.shape[0],
                    "\(space.autoencoder.latentShape)", Clock.seconds() - t0))
        return TensorDataset(latents)
    }
}
