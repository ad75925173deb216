// CTM's training state beyond the student: the frozen teacher, the target network theta^- and its EMA,
// and one optimisation step with the adaptive DSM weight (algorithms.md 3.3-3.4).
import CKTensor
import CKNN

/// The teacher D_phi (frozen) and the target network theta^-: an EMA of the student (rate 0.999) whose
/// values are copied into a frozen network after every update.
public final class CTMState {
    public let config: CTMConfig
    public let teacher: any Backbone
    public let target: any Backbone
    public private(set) var targetEMA: EMA

    /// `target` must be a fresh network of the student's architecture; it takes the student's values.
    public init(config: CTMConfig, student: any Backbone, teacher: any Backbone, target: any Backbone) {
        self.config = config
        self.teacher = teacher
        self.target = target
        targetEMA = EMA(parameters: student.parameters, decay: config.targetEMADecay, prefix: "target")
        for p in teacher.parameters { p.freeze() }
        for p in target.parameters { p.freeze() }
        targetEMA.copy(into: target.parameters)
    }

    var networks: CTMNetworks { CTMNetworks(teacher: teacher, target: target) }

    /// After an optimizer step: theta^- <- rate theta^- + (1 - rate) theta.
    func update(from student: any Backbone) {
        targetEMA.update(from: student.parameters)
        targetEMA.copy(into: target.parameters)
    }

    /// Teacher weights (`teacher.*`) and theta^- (`target.*`): a CTM checkpoint resumes without the teacher file.
    var checkpointState: [(String, Tensor)] {
        teacher.parameters.map { (join("teacher", $0.name), $0.value) } + targetEMA.state
    }

    func loadState(from checkpoint: Checkpoint) throws {
        try checkpoint.load(into: teacher.parameters, prefix: "teacher.")   // in place: stays frozen
        try targetEMA.loadState(from: checkpoint)
        targetEMA.copy(into: target.parameters)
    }
}

public struct CTMStepResult {
    public let gradients: [Tensor]
    public let loss: Float                // L_CTM + lambda L_DSM
    public let consistencyLoss: Float, denoisingLoss: Float, dsmWeight: Float
}

/// Gradients of L_CTM + lambda L_DSM for the student's parameters. The two losses' graphs share only the
/// parameters, so two backward passes cost what one over their sum would, and give lambda's norms exactly:
/// lambda = clamp(|grad_W L_CTM| / (|grad_W L_DSM| + 1e-4), 0, 1e4) at the output layer's weight W.
public func ctmGradients(student: some Backbone, state: CTMState, batch: Tensor, noise: Tensor?,
                         rng: inout some RandomNumberGenerator) -> CTMStepResult {
    let losses = ctmLosses(student: student, networks: state.networks, batch: batch, config: state.config,
                           noise: noise, rng: &rng)
    let parameters = student.parameters
    var gradients = Tape.gradients(of: losses.consistency, wrt: parameters.map(\.value))
    let denoising = Tape.gradients(of: losses.denoising, wrt: parameters.map(\.value))
    let weight: Float
    if let fixed = state.config.dsmWeight {
        weight = fixed
    } else {
        let w = parameters.firstIndex { $0 === student.outputWeight }!
        weight = min(max(l2Norm(gradients[w]) / (l2Norm(denoising[w]) + 1e-4), 0), 1e4)
    }
    for i in gradients.indices { gradients[i].addInPlace(denoising[i] * weight) }
    let c = losses.consistency.scalar, d = losses.denoising.scalar
    return CTMStepResult(gradients: gradients, loss: c + weight * d, consistencyLoss: c, denoisingLoss: d, dsmWeight: weight)
}

/// Copies values between parameters of the same name and shape (a CTM student starts as its teacher).
/// Returns how many tensors were copied.
@discardableResult
public func copyMatchingValues(from source: some Layer, to destination: some Layer) -> Int {
    let values = Dictionary(source.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    var copied = 0
    for p in destination.parameters {
        guard let v = values[p.name], v.shape == p.shape else { continue }
        v.storage.withUnsafeBufferPointer { src in p.update { dst in _ = dst.initialize(from: src) } }
        copied += 1
    }
    return copied
}
