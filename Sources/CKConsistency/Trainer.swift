// The training state: network, method, optimizer, EMA, step counter; one iteration; checkpoints that
// resume bit for bit.
import Foundation
import CKTensor
import CKNN

/// Owns backward, the optimizer step, EMA and checkpoints; the method owns the loss and its own state.
/// Randomness of iteration k comes from a generator split from the seed by k, so a run resumed at
/// step k continues exactly as the uninterrupted run would.
public final class Trainer {
    public let config: TrainingConfig
    public let network: any Backbone
    public let method: any TrainingMethod
    public private(set) var optimizer: any Optimizer
    public private(set) var ema: EMA
    public private(set) var step = 0
    public private(set) var lastLoss: Float = .nan
    /// The processes that train together (data parallel); one by default.
    public var collective: any Collective = SingleProcess()

    /// The checkpoint format this trainer writes (and the versions it reads).
    public static let format = "consistencykit-train-1"

    init(config: TrainingConfig, network: any Backbone, method: any TrainingMethod) {
        self.config = config
        self.network = network
        self.method = method
        optimizer = config.optimizer.make(parameters: network.parameters, learningRate: config.learningRate)
        ema = EMA(parameters: network.parameters, decay: config.resolvedEMADecay)
    }

    /// A fresh run: the network initialised from the config's seed, the method set up from its inputs.
    public convenience init(config: TrainingConfig, inputs: MethodInputs = MethodInputs()) throws {
        try Self.check(config)
        let network = config.makeNetwork()
        let method = try config.method.type.init(config: config, network: network, inputs: inputs)
        self.init(config: config, network: network, method: method)
    }

    /// Rebuilds a trainer from a checkpoint written by `checkpoint()` (read from `path`).
    public static func restore(from c: Checkpoint, path: String) throws -> Trainer {
        let config = try TrainingConfig.stored(in: c, path: path)
        try check(config)
        let network = config.makeNetwork()
        let method = try config.method.type.init(config: config, network: network, checkpoint: c, path: path)
        let trainer = Trainer(config: config, network: network, method: method)
        try c.load(into: network.parameters, model: config.model.rawValue)
        try trainer.ema.loadState(from: c)
        try trainer.optimizer.loadState(from: c)
        trainer.step = try c.intMetadata("step")
        guard (0...config.iterations).contains(trainer.step) else {
            throw TrainingError.invalidSetting(field: "step", value: String(trainer.step), requirement: "must be from 0 to the run's \(config.iterations) iterations")
        }
        trainer.lastLoss = Float(c.metadata["last_loss"] ?? "") ?? .nan
        return trainer
    }

    /// Every setting in range; the network must fit the method (latent or not) and the samples' shape.
    static func check(_ config: TrainingConfig) throws {
        try config.validate()
        if config.model.isLatentNetwork != config.method.type.modelsLatents {
            throw TrainingError.modelNotForMethod(model: config.model, method: config.method)
        }
        if config.model.incompatibility(with: config.sampleShape) != nil {
            throw TrainingError.modelCannotModel(model: config.model, sampleShape: config.sampleShape)
        }
    }

    /// The generator for iteration k's data and noise.
    public func rng(forStep k: Int) -> SplitMix64 { SplitMix64(seed: config.seed).split(UInt64(k) &+ 0x5EED) }

    /// The batch transforms of this run (the method may replace the general ones).
    public var batchTransforms: BatchTransforms { method.batchTransforms(config.generalBatchTransforms) }

    /// One iteration on `batch` (before the batch transforms). Throws on a non-finite loss before
    /// touching the weights.
    /// With several processes every one gets the same global batch and computes its shard; the gradients
    /// are summed over them, so each applies the same update.
    /// A class-conditional run takes the batch's `labels` (a share of them dropped to "no class", drawn from
    /// the iteration's generator split off, so the other draws are those of an unconditional run).
    /// With two or more threads, a method whose loss splits over rows computes this process's shard in one
    /// piece per core (`CoreShards`); the sums equal the whole shard's up to the order floats are added in.
    public func trainStep(batch: Tensor, labels: [Int]? = nil, rng: inout SplitMix64) throws -> StepReport {
        let (x, noise) = batchTransforms.apply(to: batch, rng: &rng)
        let shard = collective.shard(of: x.shape[0])
        let scheduled = config.scheduled(atStep: step)
        // The method's step on `part` of the batch, its network bound to that part's labels.
        func methodStep(on part: Shard, collective: any Collective, rng: inout SplitMix64) throws -> MethodStep {
            let network = try conditioned(on: labels, batchSize: x.shape[0], shard: part, rng: rng)
            return try method.step(network: network, batch: x, noise: noise, iteration: step, config: scheduled, shard: part,
                                   collective: collective, rng: &rng)
        }
        let pieces = type(of: method).lossSplitsOverRows ? CoreShards.pieces(of: shard) : [shard]
        var report: StepReport
        var gradients: [[Tensor]]   // lists to be added in order (one per piece)
        var perShard = true        // a shard's loss and gradients, to be summed over the processes
        if pieces.count > 1 {
            let summed = try CoreShards.gradients(of: network.parameters, pieces: pieces, rng: &rng) { piece, rng in
                let result = try methodStep(on: piece, collective: SingleProcess(), rng: &rng)
                guard case .loss(let loss, let report) = result else {
                    preconditionFailure("\(type(of: method).name): lossSplitsOverRows, but its step returned gradients")
                }
                return (loss, report)
            }
            report = summed.reports[0]
            report.loss = summed.loss
            gradients = summed.parts
        } else {
            let result = try methodStep(on: shard, collective: collective, rng: &rng)
            report = result.report
            switch result {
            case .loss(let loss, _): gradients = [Tape.gradients(of: loss, wrt: network.parameters.map(\.value))]
            case .gradients(let ready, _): gradients = [ready]; perShard = false
            }
        }
        if perShard, collective.size > 1 {
            var loss = [Double(report.loss)]
            try collective.sum(&loss)
            report.loss = Float(loss[0])
        }
        guard report.loss.isFinite else { throw TrainingError.nonFiniteLoss(iteration: step, loss: report.loss) }
        if perShard, collective.size > 1 { gradients = [try collective.sum(gradients.takeSum())] }
        optimizer.learningRate = scheduled.learningRate(atStep: step)
        applyGradients(summing: gradients, optimizer: &optimizer, maxGradientNorm: config.maxGradientNorm)
        ema.decay = scheduled.resolvedEMADecay
        ema.update(from: network.parameters)
        method.didUpdate(network: network)
        step += 1
        lastLoss = report.loss
        report.step = step
        return report
    }

    /// The network bound to this shard's labels, after label dropout; the network itself for an unconditional run.
    func conditioned(on labels: [Int]?, batchSize: Int, shard: Shard, rng: SplitMix64) throws -> any Backbone {
        guard let classNames = config.classNames else {
            guard labels == nil else { throw TrainingError.labelsForUnconditionalRun }
            return network
        }
        guard let labels, labels.count == batchSize else { throw TrainingError.missingLabels(classCount: classNames.count) }
        var dropping = rng.split(0xC1A5_5E5)
        let kept = labels.map { label -> Int in
            precondition((0..<classNames.count).contains(label), "Trainer: label \(label) outside the \(classNames.count) classes")
            return dropping.uniformDouble() < Double(config.labelDropout) ? classNames.count : label
        }
        return LabelledNetwork(network, labels: .rows(shard.values(kept)))
    }

    /// Images of model samples: a latent method's latents go through the decoder; other samples are returned as they are.
    public func images(of samples: Tensor) -> Tensor { method.latentSpace?.decode(samples) ?? samples }

    /// What sampling this run's network needs besides the network.
    public var samplingContext: SamplingContext { method.samplingContext }

    /// A copy of the network with its EMA or online weights, as `loadTrainedModel` reads it from this
    /// trainer's checkpoint (e.g. an EDM model handed to CTM as its teacher without a file).
    public func trainedModel(weights: WeightChoice = .ema) -> TrainedModel {
        let copy = config.makeNetwork()
        let values = weights == .ema ? ema.values : network.parameters.map(\.value)
        for (p, v) in zip(copy.parameters, values) { p.assign(v) }
        return TrainedModel(config: config, network: copy, weights: weights, step: step, context: samplingContext)
    }

    /// Every process starts from rank 0's weights (they are equal anyway when made from the same seed).
    public func broadcastWeights() throws {
        guard collective.size > 1 else { return }
        var flat = network.parameters.flatMap(\.value.storage)
        try collective.broadcast(&flat, from: 0)
        var offset = 0
        for p in network.parameters {
            let n = p.value.count
            p.update { dst in for i in 0..<n { dst[i] = flat[offset + i] } }
            offset += n
        }
        ema = EMA(parameters: network.parameters, decay: config.resolvedEMADecay)
    }

    /// Runs `body` with the EMA weights in the network, then puts the online weights back.
    public func withEMAWeights<T>(_ body: () throws -> T) rethrows -> T {
        try ema.withAveragedValues(in: network.parameters, body)
    }

    // MARK: - Checkpoints

    /// Online weights under their own names, EMA and optimizer state prefixed, the method's own state;
    /// config and step in the metadata.
    public func checkpoint() throws -> Checkpoint {
        var c = Checkpoint()
        c.append(network.parameters)
        c.append(ema.state)
        c.append(optimizer.state)
        method.save(into: &c)
        for (k, v) in optimizer.stateMetadata { c.metadata[k] = v }
        c.metadata["config"] = try config.json()
        c.metadata["step"] = String(step)
        c.metadata["last_loss"] = String(lastLoss)
        c.metadata["format"] = Self.format
        return c
    }
}
