// What every training method is: a type with its options, its loss, its samplers, the state it carries
// beyond the network and what it adds to a checkpoint. The trainer and the loop only ask the method.
import CKTensor
import CKNN

/// A method's own settings, stored in the checkpoint's config under the method's name ("ctm": {...}).
/// `init()` gives the defaults; decoding tolerates missing keys (older checkpoints lack newer settings).
public protocol MethodOptions: Codable, Sendable, Equatable {
    /// The defaults of a new run.
    init()
    /// The values a checkpoint that lacks a setting was trained with (the setting came later): where a
    /// default changed, the old one, so older runs resume as they were.
    static var storedDefaults: Self { get }
    /// Throws `TrainingError.invalidSetting` for a value out of range (an edited checkpoint, a bad option).
    func validate() throws
}

extension MethodOptions {
    public func validate() throws {}
    public static var storedDefaults: Self { Self() }

    /// Throws `invalidSetting` naming `field` unless `ok`.
    public func require(_ ok: Bool, _ field: String, _ value: Any, _ requirement: String) throws {
        if !ok { throw TrainingError.invalidSetting(field: field, value: "\(value)", requirement: requirement) }
    }
}

/// For methods without settings of their own.
public struct NoOptions: MethodOptions {
    public init() {}
}

/// Files a method needs besides the data.
public enum MethodInput: String, Sendable, Equatable, CaseIterable {
    /// A trained EDM denoiser: CTM's teacher (and the student's starting point).
    case diffusionModel = "diffusion model"
    /// A trained autoencoder with its latent statistics: latent CT's latent space.
    case autoencoder
}

/// The loaded inputs of a fresh run (a resumed run finds everything in its checkpoint).
public struct MethodInputs {
    public var diffusionModel: TrainedModel?
    public var autoencoder: LatentSpace?
    public init(diffusionModel: TrainedModel? = nil, autoencoder: LatentSpace? = nil) {
        self.diffusionModel = diffusionModel
        self.autoencoder = autoencoder
    }
}

/// What one iteration of a method hands to the trainer.
public enum MethodStep {
    /// A scalar loss on the graph; the trainer checks that it is finite before differentiating it.
    case loss(Tensor, StepReport)
    /// Ready gradients, one per network parameter (methods that combine several backward passes).
    case gradients([Tensor], StepReport)

    public var report: StepReport {
        switch self { case .loss(_, let r), .gradients(_, let r): return r }
    }
}

/// What an iteration reports for the log and the progress line.
public struct StepReport: Sendable {
    public var step: Int
    public var loss: Float
    /// Noise levels of the current grid (iCT's curriculum N, CTM's grid); 0 where the method has none.
    public var pointCount: Int
    /// Method-specific figures, e.g. CTM's adaptive DSM weight.
    public var details: [String: Float]

    public init(step: Int = 0, loss: Float, pointCount: Int = 0, details: [String: Float] = [:]) {
        self.step = step
        self.loss = loss
        self.pointCount = pointCount
        self.details = details
    }
}

/// What sampling a trained model needs from its method beyond the network.
public struct SamplingContext {
    /// Latent methods: the autoencoder that turns samples into images.
    public var latentSpace: LatentSpace?
    /// CTM: the points of the grid it was trained on (jump times default to that grid).
    public var trainingGridPoints: Int?
    /// The consistency function's scalings: iCT's (boundary at sigma_min) or EDM's (ECT).
    public var boundary: ConsistencyBoundary
    public init(latentSpace: LatentSpace? = nil, trainingGridPoints: Int? = nil, boundary: ConsistencyBoundary = .sigmaMin) {
        self.latentSpace = latentSpace
        self.trainingGridPoints = trainingGridPoints
        self.boundary = boundary
    }
}

public protocol TrainingMethod: AnyObject {
    associatedtype Options: MethodOptions

    static var name: MethodName { get }
    /// One line for help texts and the README.
    static var summary: String { get }
    /// The samplers a model of this method can use; the first is its default.
    static var samplers: [SamplerKind] { get }
    /// The network takes a second time, the jump target s (CTM's F(x, t, s)).
    static var networkTakesTarget: Bool { get }
    /// The method models normalised latents of an autoencoder, not the data itself.
    static var modelsLatents: Bool { get }
    /// Files the method needs for a fresh run.
    static var inputs: [MethodInput] { get }
    /// The curriculum's final number of intervals by default (consistency training methods).
    static var defaultS1: Int { get }
    /// The step returns a `.loss` that is a sum over the batch's rows and never uses the collective, so the
    /// trainer may compute a shard in pieces on the cores at once (`CoreShards`). False for a method that
    /// needs values of the whole batch inside its step (CTM's adaptive weight).
    static var lossSplitsOverRows: Bool { get }
    /// What sampling needs, read from a checkpoint of this method.
    static func samplingContext(config: TrainingConfig, checkpoint: Checkpoint, path: String) throws -> SamplingContext

    var options: Options { get }

    /// A fresh run: `network` is newly initialised from the config's seed; the method may set it up
    /// (CTM copies its teacher into it).
    init(config: TrainingConfig, network: any Backbone, inputs: MethodInputs) throws
    /// A resumed run: the method's state comes from the checkpoint (the network's weights are loaded after).
    init(config: TrainingConfig, network: any Backbone, checkpoint: Checkpoint, path: String) throws

    /// The iteration's loss or gradients. `batch` has been through the batch transforms; `noise` is their
    /// assigned unit noise, or nil when the method draws its own.
    /// `config` is the run's (its iteration count lays out the schedules). Every draw is made for the whole
    /// `batch`; the network runs on `shard` of it and a `.loss` is that shard's part of the batch mean (the
    /// trainer sums the gradients over the processes of `collective`). `.gradients` must already be the
    /// whole batch's (a method that needs global values, as CTM's adaptive weight, sums them itself).
    func step(network: any Backbone, batch: Tensor, noise: Tensor?, iteration: Int, config: TrainingConfig,
              shard: Shard, collective: any Collective, rng: inout SplitMix64) throws -> MethodStep
    /// After the optimizer has changed the network (CTM moves its target network).
    func didUpdate(network: any Backbone)
    /// Tensors and metadata the method adds to a checkpoint.
    func save(into checkpoint: inout Checkpoint)
    /// The latent space the network models, for latent methods.
    var latentSpace: LatentSpace? { get }
    /// A line on how a fresh run was set up from its inputs, for the run's log.
    var setupSummary: String? { get }
    /// What sampling the network in training needs besides the network (previews, evaluation).
    var samplingContext: SamplingContext { get }
    /// The batch transforms of a run, given the general ones (latent CT's OT coupling replaces assignment).
    func batchTransforms(_ general: BatchTransforms) -> BatchTransforms
}

extension TrainingMethod {
    public static var networkTakesTarget: Bool { false }
    public static var modelsLatents: Bool { false }
    public static var inputs: [MethodInput] { [] }
    public static var defaultS1: Int { 1280 }
    public static var lossSplitsOverRows: Bool { true }
    public static var defaultSampler: SamplerKind { samplers[0] }
    public static func samplingContext(config: TrainingConfig, checkpoint: Checkpoint, path: String) throws -> SamplingContext {
        SamplingContext()
    }
    /// The options stored under the method's name, over the defaults; the defaults when there are none.
    static func decodeOptions(from container: KeyedDecodingContainer<TrainingConfig.CodingKeys>) throws -> any MethodOptions {
        guard container.contains(.method(name)) else { return Options() }
        return try Options.decodeOverDefaults(from: container.superDecoder(forKey: .method(name)))
    }

    public func didUpdate(network: any Backbone) {}
    public func save(into checkpoint: inout Checkpoint) {}
    public var latentSpace: LatentSpace? { nil }
    public var setupSummary: String? { nil }
    public var samplingContext: SamplingContext { SamplingContext(latentSpace: latentSpace) }
    public func batchTransforms(_ general: BatchTransforms) -> BatchTransforms { general }
}
