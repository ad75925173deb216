// The training loop's state: network, optimizer, EMA, step counter; checkpoints that resume bit for bit.
import Foundation
import CKTensor
import CKNN

/// Everything that defines a run; stored as JSON in the checkpoint's metadata under "config".
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var method = "ict"
    public var model = ModelName.mlpToy.rawValue
    public var data = "toy:checkerboard"
    public var sampleShape = [2]
    public var iterations = 10_000
    public var batchSize = 128
    public var learningRate: Float = 3e-4
    public var optimizer = "adam"                 // adam | radam
    public var emaDecay: Float? = nil             // nil: half-life of 10% of the run (algorithms.md 1.7)
    public var seed: UInt64 = 0
    public var s0 = 10, s1 = 1280
    public var maxGradientNorm: Float? = nil
    public var immiscible = "off"                 // off | exact | quantized
    public var bssRatio: Float? = nil             // Batch Styles Standardization band ratio; nil: off
    public var ctm: CTMConfig? = nil              // method "ctm" only
    public var lct: LCTConfig? = nil              // method "lct" only

    public init() {}

    public static let methods = ["ict", "lct", "edm", "ctm"]

    /// The network this config trains, freshly initialised from `seed` (CTM's has the second time input).
    public func makeNetwork() throws -> any Backbone {
        guard let name = ModelName(rawValue: model) else {
            throw TrainingError.incompatibleCheckpoint("unknown model '\(model)'; use \(ModelName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var rng = SplitMix64(seed: seed)
        return name.make(sampleShape: sampleShape, conditionsOnTarget: method == "ctm", rng: &rng)
    }

    public var resolvedEMADecay: Float { emaDecay ?? EMA.decay(halfLife: max(1, 0.1 * Double(iterations))) }

    /// The batch transforms this config asks for (shared by every method).
    public var batchTransforms: BatchTransforms {
        if method == "lct", lct?.otCoupling ?? false { return .otCoupling(bssRatio: bssRatio) }
        return BatchTransforms(bssRatio: bssRatio, assignment: NoiseAssignment(rawValue: immiscible) ?? .off)
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int, loss: Float)
    case incompatibleCheckpoint(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let step, let loss):
            return "loss became \(loss) at iteration \(step); the last good checkpoint is kept. Lower --lr (or set --max-grad-norm) and --resume."
        case .incompatibleCheckpoint(let why): return why
        }
    }
}

public struct StepReport: Sendable {
    public let step: Int, loss: Float, pointCount: Int
    /// CTM only: the adaptive weight of the DSM term.
    public var dsmWeight: Float? = nil
}

/// Owns backward, the optimizer step, EMA and checkpoints; the losses are plain functions.
/// Randomness of iteration k comes from a generator split from the seed by k, so a run resumed at
/// step k continues exactly as the uninterrupted run would.
public final class Trainer {
    public let config: TrainingConfig
    public let network: any Backbone
    public private(set) var optimizer: any Optimizer
    public private(set) var ema: EMA
    public private(set) var step = 0
    public private(set) var lastLoss: Float = .nan
    let tables = SigmaPairTables()
    /// CTM's teacher and target network; nil for the other methods.
    public let ctm: CTMState?
    /// Latent CT's autoencoder and latent statistics; nil for the other methods.
    public let latentSpace: LatentSpace?

    /// `teacher` is required for CTM (a one-time network of the same architecture, e.g. an EDM run's EMA weights),
    /// `latentSpace` for latent CT.
    public init(config: TrainingConfig, network: any Backbone, teacher: (any Backbone)? = nil,
                latentSpace: LatentSpace? = nil) throws {
        guard TrainingConfig.methods.contains(config.method) else {
            throw TrainingError.incompatibleCheckpoint("unknown method '\(config.method)': use \(TrainingConfig.methods.joined(separator: ", "))")
        }
        self.config = config
        self.network = network
        if config.method == "ctm" {
            guard let teacher else { throw TrainingError.incompatibleCheckpoint("CTM needs a teacher: pass --teacher EDM.safetensors") }
            ctm = CTMState(config: config.ctm ?? CTMConfig(), student: network, teacher: teacher, target: try config.makeNetwork())
        } else {
            ctm = nil
        }
        if config.method == "lct" {
            guard let latentSpace else { throw TrainingError.incompatibleCheckpoint("latent CT needs an autoencoder: pass --autoencoder AE.safetensors") }
            guard latentSpace.autoencoder.latentShape == config.sampleShape else {
                throw TrainingError.incompatibleCheckpoint("the autoencoder makes latents \(latentSpace.autoencoder.latentShape), but the run models \(config.sampleShape)")
            }
        }
        self.latentSpace = config.method == "lct" ? latentSpace : nil
        switch config.optimizer {
        case "adam": optimizer = Adam(parameters: network.parameters, learningRate: config.learningRate)
        case "radam": optimizer = RAdam(parameters: network.parameters, learningRate: config.learningRate)
        default: throw TrainingError.incompatibleCheckpoint("unknown optimizer '\(config.optimizer)': use adam or radam")
        }
        ema = EMA(parameters: network.parameters, decay: config.resolvedEMADecay)
    }

    /// The generator for iteration k's data and noise.
    public func rng(forStep k: Int) -> SplitMix64 { SplitMix64(seed: config.seed).split(UInt64(k) &+ 0x5EED) }

    /// One iteration on `batch` (after the config's batch transforms). Throws on a non-finite loss before
    /// touching the weights.
    public func trainStep(batch: Tensor, rng: inout SplitMix64) throws -> StepReport {
        let (x, noise) = config.batchTransforms.apply(to: batch, rng: &rng)
        var gradients: [Tensor] = [], value: Float, pointCount: Int
        var dsmWeight: Float? = nil
        // The single-loss methods differentiate their loss below, once it is known to be finite.
        var loss: Tensor? = nil
        let ict = ICTConfig(totalSteps: config.iterations, s0: config.s0, s1: config.s1)
        switch config.method {
        case "ctm":
            let result = ctmGradients(student: network, state: ctm!, batch: x, noise: noise, rng: &rng)
            (gradients, value, pointCount, dsmWeight) = (result.gradients, result.loss, ctm!.config.gridPoints, result.dsmWeight)
        case "lct":
            let result = lctLoss(network: network, batch: x, step: step, config: ict, lct: config.lct ?? LCTConfig(),
                                 tables: tables, noise: noise, rng: &rng)
            (loss, value, pointCount) = (result.loss, result.loss.scalar, result.pointCount)
        case "edm":
            let result = edmLoss(network: network, batch: x, noise: noise, rng: &rng)
            (loss, value, pointCount) = (result, result.scalar, 0)
        default:
            let result = ictLoss(network: network, batch: x, step: step, config: ict, tables: tables, noise: noise, rng: &rng)
            (loss, value, pointCount) = (result.loss, result.loss.scalar, result.pointCount)
        }
        guard value.isFinite else { throw TrainingError.nonFiniteLoss(step: step, loss: value) }
        if let loss { gradients = Tape.gradients(of: loss, wrt: network.parameters.map(\.value)) }
        applyGradients(gradients, optimizer: &optimizer, maxGradientNorm: config.maxGradientNorm)
        ema.update(from: network.parameters)
        ctm?.update(from: network)
        step += 1
        lastLoss = value
        return StepReport(step: step, loss: value, pointCount: pointCount, dsmWeight: dsmWeight)
    }

    /// Images of model samples: latent CT's latents go through the decoder; other samples are returned as they are.
    public func images(of samples: Tensor) -> Tensor { latentSpace?.decode(samples) ?? samples }

    /// Runs `body` with the EMA weights in the network, then puts the online weights back.
    public func withEMAWeights<T>(_ body: () throws -> T) rethrows -> T {
        try ema.withAveragedValues(in: network.parameters, body)
    }

    // MARK: - Checkpoints

    /// Online weights under their own names, EMA and optimizer state prefixed; config and step in metadata.
    public func checkpoint() throws -> Checkpoint {
        var c = Checkpoint()
        c.append(network.parameters)
        c.append(ema.state)
        c.append(optimizer.state)
        if let ctm { c.append(ctm.checkpointState) }
        latentSpace?.append(to: &c, prefix: "autoencoder.")
        for (k, v) in optimizer.stateMetadata { c.metadata[k] = v }
        c.metadata["config"] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        c.metadata["step"] = String(step)
        c.metadata["last_loss"] = String(lastLoss)
        c.metadata["format"] = "consistencykit-train-1"
        return c
    }

    /// Rebuilds a trainer from a checkpoint written by `checkpoint()`.
    public static func restore(from c: Checkpoint, path: String) throws -> Trainer {
        guard let json = c.metadata["config"], let config = try? JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8)) else {
            throw TrainingError.incompatibleCheckpoint("\(path): no training config in its metadata; was it written by `cmkit train`?")
        }
        let network: any Backbone, teacher: (any Backbone)?
        do {
            network = try config.makeNetwork()
            var oneTime = config
            oneTime.method = "edm"
            teacher = config.method == "ctm" ? try oneTime.makeNetwork() : nil
        } catch let error as TrainingError { throw TrainingError.incompatibleCheckpoint("\(path): \(error)") }
        let latentSpace = config.method == "lct" ? try LatentSpace.load(from: c, prefix: "autoencoder.", path: path) : nil
        let trainer = try Trainer(config: config, network: network, teacher: teacher, latentSpace: latentSpace)
        try c.load(into: trainer.network.parameters, model: config.model)
        try trainer.ctm?.loadState(from: c)
        try trainer.ema.loadState(from: c)
        try trainer.optimizer.loadState(from: c)
        trainer.step = try c.intMetadata("step")
        trainer.lastLoss = Float(c.metadata["last_loss"] ?? "") ?? .nan
        return trainer
    }
}
