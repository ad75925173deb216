// Everything that can go wrong setting up, resuming or running a training method, one case per condition.
// The cases carry data; front ends phrase their own advice (the CLI names its flags, the library does not).
import CKNN

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss became NaN or infinite at `iteration`; the weights were not changed by it.
    case nonFiniteLoss(iteration: Int, loss: Float)
    /// A checkpoint without a training config in its metadata: not written by a `Trainer`.
    case noTrainingConfig(path: String)
    /// The training config is not valid JSON of the expected form.
    case unreadableConfig(path: String, detail: String)
    /// A closed choice (method, model, optimizer, noise assignment, ...) with a value that names nothing.
    case unknownValue(field: String, value: String, valid: [String])
    /// The method needs an input that was not given.
    case missingInput(method: MethodName, input: MethodInput)
    /// The method was given an input it does not use.
    case unusedInput(method: MethodName, input: MethodInput)
    /// A diffusion-model input trained with another method.
    case inputHasWrongMethod(path: String, found: MethodName, expected: MethodName)
    /// A diffusion-model input of another network or sample shape than the run.
    case inputDoesNotMatch(path: String, model: ModelName, sampleShape: [Int], runModel: ModelName, runSampleShape: [Int])
    /// The autoencoder encodes images of another shape than the data's.
    case autoencoderImageShape(autoencoder: [Int], data: [Int])
    /// A file given as an autoencoder holds none.
    case noAutoencoder(path: String)
    /// The autoencoder needs square images whose side is divisible by 4.
    case autoencoderNeedsSquareImages(shape: [Int])
    /// The network cannot model samples of this shape.
    case modelCannotModel(model: ModelName, sampleShape: [Int])
    /// A latent network for a pixel method, or the other way round.
    case modelNotForMethod(model: ModelName, method: MethodName)
    /// The method needs image data (latent methods encode images).
    case needsImages(method: MethodName, data: String)
    /// A time budget too short for even one iteration after its measurement and the final checkpoint.
    case budgetTooSmall(seconds: Double, spent: Double, stepSeconds: Double, saveSeconds: Double)
    /// A setting outside its range (from an option or an edited checkpoint).
    case invalidSetting(field: String, value: String, requirement: String)
    /// More samples per batch than the data set has.
    case batchLargerThanData(batch: Int, count: Int)
    /// A class-conditional run was handed a batch without labels.
    case missingLabels(classCount: Int)
    /// Labels were handed to a run that is not class-conditional.
    case labelsForUnconditionalRun
    /// A method's input (a teacher, a pretrained network) and the run disagree about classes.
    case classesDoNotMatch(path: String, input: [String]?, run: [String]?)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(iteration, loss):
            return "the loss became \(loss) at iteration \(iteration); the weights were not changed by it. "
                + "A lower learning rate or gradient clipping usually helps"
        case let .noTrainingConfig(path):
            return "\(path): no training config in its metadata; it was not written by a consistency-model trainer"
        case let .unreadableConfig(path, detail):
            return "\(path): the training config in its metadata cannot be read (\(detail)); the file is corrupt or was edited by hand"
        case let .unknownValue(field, value, valid):
            return "\(field) '\(value)' is not known; valid values: \(valid.joined(separator: ", "))"
        case let .missingInput(method, input):
            return "\(method.rawValue) needs a \(input.rawValue): \(method.type.summary)"
        case let .unusedInput(method, input):
            return "\(method.rawValue) does not use a \(input.rawValue)"
        case let .inputHasWrongMethod(path, found, expected):
            return "\(path) was trained with method \(found.rawValue), but a \(expected.rawValue) model is needed"
        case let .inputDoesNotMatch(path, model, shape, runModel, runShape):
            return "\(path) is \(model.rawValue) on samples of shape \(shape), but this run is \(runModel.rawValue) on \(runShape); "
                + "use the same network and data"
        case let .autoencoderImageShape(autoencoder, data):
            return "the autoencoder encodes images \(autoencoder), but the data has \(data)"
        case let .noAutoencoder(path):
            return "\(path): no autoencoder in it (written by the autoencoder trainer, `cmkit train-autoencoder`)"
        case let .autoencoderNeedsSquareImages(shape):
            return "the autoencoder needs square images with a side divisible by 4, got \(shape)"
        case let .modelCannotModel(model, shape):
            return model.incompatibility(with: shape) ?? "\(model.rawValue) cannot model samples of shape \(shape)"
        case let .modelNotForMethod(model, method):
            return method.type.modelsLatents
                ? "\(method.rawValue) models latents: use a latent network (\(ModelName.allCases.filter(\.isLatentNetwork).map(\.rawValue).joined(separator: ", "))), not \(model.rawValue)"
                : "\(model.rawValue) is a latent network; \(method.rawValue) models the data itself"
        case let .needsImages(method, data):
            return "\(method.rawValue) works on images, but \(data) is a set of points"
        case let .budgetTooSmall(seconds, spent, step, save):
            return "a time budget of \(Int(seconds.rounded())) s leaves no iteration: loading and measuring took \(Int(spent.rounded())) s, "
                + "an iteration takes \(step) s and the final checkpoint and evaluation \(save) s"
        case let .invalidSetting(field, value, requirement):
            return "\(field) is \(value), but it \(requirement)"
        case let .batchLargerThanData(batch, count):
            return "a batch of \(batch) is larger than the \(count) training samples"
        case let .missingLabels(count):
            return "this run is class-conditional (\(count) classes) but its data gave no labels; train on labelled data"
        case .labelsForUnconditionalRun:
            return "labels were given to a run that is not class-conditional; start a new run with --classes to use them"
        case let .classesDoNotMatch(path, input, run):
            func describe(_ names: [String]?) -> String { names.map { "classes \($0.joined(separator: ", "))" } ?? "no classes" }
            return "\(path) was trained with \(describe(input)), but this run has \(describe(run)); "
                + "use a model trained on the same classes (or none, with neither)"
        }
    }
}
