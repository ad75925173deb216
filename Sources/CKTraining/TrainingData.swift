// The data a run's network sees: the data set itself, or for a latent method its normalised latents,
// encoded once; with their labels for a class-conditional run.
import Foundation
import CKTensor
import CKConsistency
import CKDatasets

extension Trainer {
    /// Opens the run's data; `note` hears about slow preparation (encoding latents).
    public func trainingData(note: (String) -> Void = { _ in }) throws -> any Dataset {
        let spec = try DataSpec(parsing: config.data)
        let classes = config.classNames != nil
        guard let space = method.latentSpace else { return try checkedClasses(spec.open(classes: classes)) }
        guard let (images, labels) = try spec.labelledTrainingImages(classes: classes, seed: config.seed) else {
            throw TrainingError.needsImages(method: config.method, data: spec.description)
        }
        let t0 = Clock.seconds()
        let latents = try space.encode(images)
        note(String(format: "encoded %d training images to latents %@ in %.1f s", images.shape[0],
                    "\(space.autoencoder.latentShape)", Clock.seconds() - t0))
        return try checkedClasses(TensorDataset(latents, labels: labels, classNames: labels == nil ? nil : config.classNames))
    }

    /// A class-conditional run's data must still have the classes it started with (a folder can change).
    private func checkedClasses(_ data: any Dataset) throws -> any Dataset {
        if let names = config.classNames, data.classNames != names {
            throw TrainingError.classesDoNotMatch(path: config.data, input: data.classNames, run: names)
        }
        return data
    }

    /// Iteration k's step on its batch, with the batch's labels in a class-conditional run.
    func trainStep(batchOf k: Int, from batcher: inout StepBatcher, rng: inout SplitMix64) throws -> StepReport {
        let (batch, labels) = batcher.labelledBatch(forStep: k)
        return try trainStep(batch: batch, labels: config.classNames == nil ? nil : labels, rng: &rng)
    }
}
