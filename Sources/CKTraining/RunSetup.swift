// A new run from what a user chose: the defaults for what they left open (network per kind of data,
// learning rate, batch, curriculum end), the method's input files loaded and checked. A fresh and a
// resumed run then take the same path (`Trainer`, `TrainingLoop`).
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets

/// What a user asks for; nil means "the default".
public struct RunRequest {
    public var method: MethodName = .ict
    public var data: DataSpec = .toy(.checkerboard)
    public var model: ModelName? = nil
    public var iterations = 10_000
    /// The counts a `--time` run's schedules were laid over before it re-planned (to repeat it exactly).
    public var replans: [Replan] = []
    public var batchSize: Int? = nil
    public var learningRate: Float? = nil
    /// The share of the run over which the learning rate falls to zero at its end; nil: constant.
    public var learningRateDecay: Double? = nil
    public var optimizer: OptimizerName = .adam
    public var emaDecay: Float? = nil
    public var maxGradientNorm: Float? = nil
    public var s1: Int? = nil
    public var seed: UInt64 = 0
    public var immiscible: NoiseAssignment = .off
    public var bssRatio: Float? = nil
    /// The method's settings; nil: its defaults.
    public var options: (any MethodOptions)? = nil
    /// Input files by kind (a trained EDM model, an autoencoder).
    public var inputs: [MethodInput: URL] = [:]
    /// Class-conditional training on the data's labels.
    public var classes = false
    /// The share of labels dropped to "no class"; nil: `TrainingConfig`'s default.
    public var labelDropout: Float? = nil

    public init() {}
}

/// The package's choices where a user gives none.
public enum TrainingDefaults {
    /// mlp-toy for points; unet-s for images; latent-net for latent methods.
    public static func model(method: MethodName, sampleKind: SampleKind) -> ModelName {
        if method.type.modelsLatents { return .latentNet }
        return sampleKind == .points ? .mlpToy : .unetS
    }

    /// 3e-4 for the toy MLP (the port's measured best), 1e-4 for the image networks (iCT's).
    public static func learningRate(model: ModelName) -> Float { model == .mlpToy ? 3e-4 : 1e-4 }

    public static let batchSize = 128
}

extension Trainer {
    /// A fresh trainer for `request`: opens the data to learn the sample shape, loads and checks the
    /// method's inputs, fills in the defaults.
    public static func start(_ request: RunRequest) throws -> Trainer {
        let (config, inputs) = try request.resolved()
        return try Trainer(config: config, inputs: inputs)
    }
}

extension RunRequest {
    /// The config this request makes, with the defaults filled in (the data is opened for its sample shape),
    /// and its input files loaded and checked. `requiringInputs` false lets a missing input pass (a
    /// two-phase run trains its diffusion model first).
    public func resolved(requiringInputs: Bool = true) throws -> (TrainingConfig, MethodInputs) {
        let request = self
        let method = request.method
        for input in request.inputs.keys where !method.type.inputs.contains(input) {
            throw TrainingError.unusedInput(method: method, input: input)
        }
        for input in method.type.inputs where request.inputs[input] == nil && requiringInputs {
            throw TrainingError.missingInput(method: method, input: input)
        }
        let data = try request.data.open(classes: request.classes)
        let dataShape = data.sampleShape
        var inputs = MethodInputs()
        if let url = request.inputs[.autoencoder] {
            let space = try LatentSpace.load(from: try Checkpoint.read(from: url), path: url.path)
            guard space.autoencoder.imageShape == dataShape else {
                throw TrainingError.autoencoderImageShape(autoencoder: space.autoencoder.imageShape, data: dataShape)
            }
            inputs.autoencoder = space
        }
        if let url = request.inputs[.diffusionModel] { inputs.diffusionModel = try loadTrainedModel(from: url, weights: .ema) }
        if method.type.modelsLatents, request.data.isPointCloud {
            throw TrainingError.needsImages(method: method, data: request.data.description)
        }
        let sampleShape = inputs.autoencoder?.autoencoder.latentShape ?? dataShape
        var config = TrainingConfig(method: method)
        // ECT's start and CTM's teacher fix the network: it is theirs unless --model says otherwise (and is then checked).
        config.model = request.model ?? inputs.diffusionModel?.config.model
            ?? TrainingDefaults.model(method: method, sampleKind: SampleKind(sampleShape: dataShape))
        config.data = request.data.description
        config.sampleShape = sampleShape
        config.iterations = request.iterations
        config.replans = request.replans
        config.batchSize = request.batchSize ?? TrainingDefaults.batchSize
        config.learningRate = request.learningRate ?? TrainingDefaults.learningRate(model: config.model)
        config.learningRateDecay = request.learningRateDecay
        config.optimizer = request.optimizer
        config.emaDecay = request.emaDecay
        config.maxGradientNorm = request.maxGradientNorm
        config.s1 = request.s1 ?? method.type.defaultS1
        config.seed = request.seed
        config.immiscible = request.immiscible
        config.bssRatio = request.bssRatio
        if let options = request.options { config.options = options }
        if request.classes { config.classNames = data.classNames }
        if let dropout = request.labelDropout { config.labelDropout = dropout }
        return (config, inputs)
    }
}

extension PretrainingPlan {
    /// Both phases of `request` (a method that starts from a diffusion model, none given): EDM on the same
    /// data, network, batch and seed with its own learning rate (and decay) and iteration count, then the method.
    /// With a budget, `fraction` of it goes to pretraining and the iteration counts are planned by it.
    public init(request: RunRequest, budget: TimeBudget?, fraction: Double, pretrainIterations: Int,
                pretrainLearningRate: Float?, pretrainLearningRateDecay: Double? = nil) throws {
        precondition(request.method.type.inputs.contains(.diffusionModel), "PretrainingPlan: \(request.method) takes no diffusion model")
        let (method, _) = try request.resolved(requiringInputs: false)
        var edm = request
        edm.method = .edm
        edm.options = nil
        edm.inputs = [:]
        edm.iterations = pretrainIterations
        // Only the method's phase re-plans its count (the EDM phase hands it what time it leaves).
        edm.replans = []
        edm.learningRate = pretrainLearningRate
        edm.learningRateDecay = pretrainLearningRateDecay
        edm.s1 = nil
        let (pretrain, _) = try edm.resolved()
        self.init(pretrain: pretrain, method: method, budget: budget?.seconds, fraction: fraction)
    }
}
