// The option groups of `cmkit train`: general ones, then one group per method (titled in --help).
import ArgumentParser
import Foundation
import CKNN
import CKConsistency
import CKDatasets
import CKTraining

extension MethodName: ExpressibleByArgument {}
extension OptimizerName: ExpressibleByArgument {}
extension NoiseAssignment: ExpressibleByArgument {}
extension LatentMetric: ExpressibleByArgument {}

/// A --time value.
struct TimeBudgetArgument: ExpressibleByArgument {
    let budget: TimeBudget
    init?(argument: String) {
        guard let budget = TimeBudget(parsing: argument) else { return nil }
        self.budget = budget
    }
}

/// A --replanned value: STEP:COUNT.
struct ReplanArgument: ExpressibleByArgument {
    let replan: Replan
    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let step = Int(parts[0]), let count = Int(parts[1]), step >= 1, count >= 1 else { return nil }
        replan = Replan(step: step, previousIterations: count)
    }
}

/// on | off, for the switches of a method's ablations.
enum Switch: String, CaseIterable, ExpressibleByArgument {
    case on, off
    var isOn: Bool { self == .on }
}

struct RunOptions: ParsableArguments {
    @Option(help: "Output folder for the run.") var out: String?
    @Option(help: "Continue the run in this folder from its checkpoint (its settings stay; --save-every, --log-every, --eval-every and --threads may change).")
    var resume: String?
    @Flag(help: "With --out: start over in a folder that already holds a run, deleting its files.") var force = false
    @Option(parsing: .unconditional, help: "Training iterations (the schedules are laid out over this many; default 10000).") var iters: Int?
    @Option(help: ArgumentHelp("Train for this wall-clock time instead of --iters: 90s, 10m, 1h30m. The step time is measured over the first iterations, the count is fixed so that training with its checkpoints and evaluations ends within the budget, and the run starts again with it; a quarter, half and three quarters of the way the pace is checked and the count re-planned if the run would miss the budget by more than 2% (all recorded in the checkpoint: --iters with that count, and the --replanned values the note prints, repeats the run).", valueName: "duration"))
    var time: TimeBudgetArgument?
    @Option(help: ArgumentHelp("With --iters, to repeat a --time run that re-planned its count on the way (its note prints these): the iterations before STEP had their schedules laid over COUNT. Repeatable.", valueName: "step:count"))
    var replanned: [ReplanArgument] = []
    @Option(parsing: .unconditional, help: "Random seed: the same seed gives the same run (default 0).") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Write a checkpoint and sample picture every N iterations (0: only at the end; default 1000).")
    var saveEvery: Int?
    @Option(parsing: .unconditional, help: "Print a progress line every N iterations (default: about 40 lines per run).") var logEvery: Int?
    @Option(parsing: .unconditional, help: "Every N iterations, sample with the EMA weights (1 and 2 steps) and log the quality metric to RUN/eval.csv (0: off; default).")
    var evalEvery: Int?
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        if let iters, iters < 1 { throw ValidationError("--iters must be positive.") }
        if iters != nil && time != nil { throw ValidationError("give --iters or --time, not both.") }
        if !replanned.isEmpty {
            guard let iters else { throw ValidationError("--replanned repeats a re-planned --time run: give it with --iters (the run's final count).") }
            var previous = 0
            for r in replanned.map(\.replan) {
                guard r.step > previous, r.step < iters else {
                    throw ValidationError("--replanned \(r.step):\(r.previousIterations): the steps must rise and lie inside the --iters \(iters) iterations.")
                }
                guard r.previousIterations >= r.step else {
                    throw ValidationError("--replanned \(r.step):\(r.previousIterations): the count must be at least the step (it covered the iterations before it).")
                }
                previous = r.step
            }
        }
        if let saveEvery, saveEvery < 0 { throw ValidationError("--save-every must not be negative.") }
        if let evalEvery, evalEvery < 0 { throw ValidationError("--eval-every must not be negative.") }
        if let logEvery, logEvery < 1 { throw ValidationError("--log-every must be at least 1.") }
        if force && out == nil { throw ValidationError("--force is for --out (starting over in a folder that holds a run).") }
        if resume != nil && out != nil { throw ValidationError("give --out for a new run or --resume for an old one, not both.") }
    }

    /// Options that would change a run's settings (a resumed run keeps its own).
    var settingFlags: [String] {
        [("--iters", iters != nil), ("--time", time != nil), ("--replanned", !replanned.isEmpty), ("--seed", seed != nil)].filter(\.1).map(\.0)
    }
}

struct GeneralOptions: ParsableArguments {
    @Option(help: "Training method (default: for images the ten-minute recipe, an EDM model tuned with ect in one run; ict for points).")
    var method: MethodName?
    @Option(help: "Network (default: mlp-toy for points, unet-xs for images without --method, unet-s for images with one, latent-net for lct; with --init or --teacher, that model's network).")
    var model: ModelName?
    @Option(parsing: .unconditional, help: "Batch size (default \(TrainingDefaults.batchSize)).") var batch: Int?
    @Option(parsing: .unconditional, help: "Learning rate (default 3e-4 for mlp-toy, 1e-4 otherwise).") var lr: Float?
    @Option(parsing: .unconditional, help: "Let the learning rate fall linearly to zero over this share of the run's end, e.g. 0.3 (default: \(ImageRecipe.learningRateDecay.map { String($0) } ?? "none") for images without --method, whose tuning phase it is; else constant).") var lrDecay: Double?
    @Option(help: "Optimizer (default adam).") var optimizer: OptimizerName?
    @Option(parsing: .unconditional, help: "EMA decay of the sampling weights (default: half-life of 10% of --iters).") var emaDecay: Float?
    @Option(parsing: .unconditional, help: "Clip the gradient norm to this value (off by default).") var maxGradNorm: Float?

    func validate() throws {
        if let batch, !(1...65536).contains(batch) { throw ValidationError("--batch must be from 1 to 65536.") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number.") }
        if let lrDecay, !(lrDecay > 0 && lrDecay <= 1) { throw ValidationError("--lr-decay must be a share of the run in (0, 1], e.g. 0.3.") }
        if let emaDecay, !(emaDecay >= 0 && emaDecay < 1) { throw ValidationError("--ema-decay must be in [0, 1).") }
        if let maxGradNorm, !(maxGradNorm > 0 && maxGradNorm.isFinite) { throw ValidationError("--max-grad-norm must be a positive number.") }
    }

    var settingFlags: [String] {
        [("--method", method != nil), ("--model", model != nil), ("--batch", batch != nil), ("--lr", lr != nil),
         ("--lr-decay", lrDecay != nil), ("--optimizer", optimizer != nil), ("--ema-decay", emaDecay != nil), ("--max-grad-norm", maxGradNorm != nil)].filter(\.1).map(\.0)
    }
}

struct DataOptions: ParsableArguments {
    @Option(help: "Training data: \(DataSpec.help) (default toy:checkerboard).") var data: String?
    @Option(help: "Immiscible noise assignment (quantized: binary16 distances, as the paper's code; default off).")
    var immiscible: NoiseAssignment?
    @Option(parsing: .unconditional, help: "Batch Styles Standardization of each image batch with this band ratio r in (0, 1] (off by default).")
    var bss: Float?
    @Flag(inversion: .prefixedNo, help: "Class-conditional training on the data's labels: fashion-mnist's ten classes, shapes' four styles, or folder:PATH's subfolders (one per class, named after it). Sample a class with `cmkit sample --class NAME`. Default: on for fashion-mnist and shapes without --method (the recipe), else off.")
    var classes: Bool?
    @Option(parsing: .unconditional, help: "With --classes: the share of labels dropped to \"no class\" so the model also samples unconditionally and takes guidance (default 0.1).")
    var labelDropout: Float?

    func validate() throws {
        if let bss, !(bss > 0 && bss <= 1) { throw ValidationError("--bss must be in (0, 1].") }
        if let labelDropout {
            guard classes != false else { throw ValidationError("--label-dropout is for class-conditional runs: drop --no-classes.") }
            guard labelDropout >= 0 && labelDropout < 1 else { throw ValidationError("--label-dropout must be in [0, 1), e.g. 0.1.") }
        }
    }

    var settingFlags: [String] {
        [("--data", data != nil), ("--immiscible", immiscible != nil), ("--bss", bss != nil), ("--classes", classes == true),
         ("--no-classes", classes == false),
         ("--label-dropout", labelDropout != nil)].filter(\.1).map(\.0)
    }
}

struct CurriculumOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Curriculum s1: the final number of discretization intervals (default 1280; 640 for lct).") var s1: Int?

    func validate() throws {
        if let s1, !(10...(1 << 20)).contains(s1) { throw ValidationError("--s1 must be from 10 (s0) to 2^20.") }
    }
}

/// A method's own options: which flags were given (to refuse them with another method), the options and
/// input files they make.
protocol MethodOptionGroup: ParsableArguments {
    static var method: MethodName { get }
    /// The flag that names each input file the method takes.
    static func flag(for input: MethodInput) -> String?
    var givenFlags: [String] { get }
    func options() throws -> any MethodOptions
    var inputs: [MethodInput: URL] { get }
}

struct LatentCTOptions: MethodOptionGroup {
    static let method = MethodName.lct
    @Option(help: "The autoencoder (written by `cmkit train-autoencoder`).") var autoencoder: String?
    @Option(help: "Consistency metric (huber: iCT's pseudo-Huber, for ablations; default cauchy).") var metric: LatentMetric?
    @Option(help: "The diffusion loss at low-noise steps (default on).") var diffusionLoss: Switch?
    @Option(help: "The adaptive scaling-c schedule (off: 0.00054 sqrt(d) throughout; default on).") var adaptiveC: Switch?
    @Option(help: "Minibatch OT coupling of latents and noise (default on).") var ot: Switch?

    static func flag(for input: MethodInput) -> String? { input == .autoencoder ? "--autoencoder AE.safetensors" : nil }

    var givenFlags: [String] {
        [("--autoencoder", autoencoder != nil), ("--metric", metric != nil), ("--diffusion-loss", diffusionLoss != nil),
         ("--adaptive-c", adaptiveC != nil), ("--ot", ot != nil)].filter(\.1).map(\.0)
    }

    func options() throws -> any MethodOptions {
        var o = LCTConfig()
        if let metric { o.metric = metric }
        if let diffusionLoss { o.diffusionLoss = diffusionLoss.isOn }
        if let adaptiveC { o.adaptiveC = adaptiveC.isOn }
        if let ot { o.otCoupling = ot.isOn }
        return o
    }

    var inputs: [MethodInput: URL] { autoencoder.map { [.autoencoder: URL(fileURLWithPath: $0)] } ?? [:] }
}

struct CTMOptions: MethodOptionGroup {
    static let method = MethodName.ctm
    @Option(help: "The EDM teacher's checkpoint (written by `cmkit train --method edm`).") var teacher: String?
    @Option(parsing: .unconditional, help: "Points of the Karras time grid the teacher's Heun solver walks (default 18).") var ctmGrid: Int?
    @Option(parsing: .unconditional, help: "Weight of the DSM term: a number >= 0 or 'adaptive' (gradient-norm balance at the output layer; default).")
    var dsmWeight: DSMWeight?
    @Option(parsing: .unconditional, help: "EMA rate of the target network used for the jumps to sigma_min (default 0.999).") var targetEma: Float?
    @Option(help: "How the teacher length k is drawn: weighted (P(k) ~ k, the paper's) or uniform (default uniform: it trains the short jumps long chains use).")
    var ctmSteps: CTMStepStrategy?
    @Option(help: "Consistency weighting: uniform, or jump = 1/(1 - s/t)^power, which weighs short jumps up (default jump).")
    var ctmWeighting: CTMWeighting?
    @Option(parsing: .unconditional, help: "The power of the jump weighting (default 2).") var ctmWeightingPower: Double?

    static func flag(for input: MethodInput) -> String? { input == .diffusionModel ? "--teacher EDM.safetensors" : nil }

    var givenFlags: [String] {
        [("--teacher", teacher != nil), ("--ctm-grid", ctmGrid != nil), ("--dsm-weight", dsmWeight != nil),
         ("--target-ema", targetEma != nil), ("--ctm-steps", ctmSteps != nil), ("--ctm-weighting", ctmWeighting != nil),
         ("--ctm-weighting-power", ctmWeightingPower != nil)].filter(\.1).map(\.0)
    }

    func validate() throws {
        if let ctmGrid, ctmGrid < 3 { throw ValidationError("--ctm-grid must be at least 3.") }
        if let targetEma, !(targetEma >= 0 && targetEma < 1) { throw ValidationError("--target-ema must be in [0, 1).") }
    }

    func options() throws -> any MethodOptions {
        var o = CTMConfig()
        if let ctmGrid { o.gridPoints = ctmGrid }
        if let dsmWeight { o.dsmWeight = dsmWeight.fixed }
        if let targetEma { o.targetEMADecay = targetEma }
        if let ctmSteps { o.stepStrategy = ctmSteps }
        if let ctmWeighting { o.weighting = ctmWeighting }
        if let ctmWeightingPower { o.weightingPower = ctmWeightingPower }
        return o
    }

    var inputs: [MethodInput: URL] { teacher.map { [.diffusionModel: URL(fileURLWithPath: $0)] } ?? [:] }
}

/// 'adaptive' or a fixed number >= 0.
struct DSMWeight: ExpressibleByArgument {
    let fixed: Float?
    init?(argument: String) {
        if argument == "adaptive" { fixed = nil; return }
        guard let v = Float(argument), v >= 0, v.isFinite else { return nil }
        fixed = v
    }
    static var defaultCompletionKind: CompletionKind { .list(["adaptive"]) }
}

extension ECTMapping: ExpressibleByArgument {}
extension CTMStepStrategy: ExpressibleByArgument {}
extension CTMWeighting: ExpressibleByArgument {}
extension ECTWeighting: ExpressibleByArgument {}

struct ECTOptions: MethodOptionGroup {
    static let method = MethodName.ect
    @Option(name: .customLong("init"), help: "The EDM model to tune (written by `cmkit train --method edm`).") var initialization: String?
    @Option(parsing: .unconditional, help: "r/t approaches 1 by this factor per stage (default 4).") var ectQ: Double?
    @Option(parsing: .unconditional, help: "Delta t stages laid over the run (default 4; 1 keeps the first stage).") var ectStages: Int?
    @Option(parsing: .unconditional, help: "The share of the iterations in the last (smallest-gap) stage, the other stages splitting the rest equally (default: all stages equally long).")
    var ectLastStage: Double?
    @Option(help: "Mapping from t to r (default sigmoid).") var ectMapping: ECTMapping?
    @Option(help: "Weighting: edm is 1/t^2 + 1/sigma_data^2 (the paper), gap is 1/(t - r) (the authors' code) (default edm).")
    var ectWeighting: ECTWeighting?
    @Option(parsing: .unconditional, help: "Pseudo-Huber c (0: sqrt of the squared distance, the paper's adaptive weighting; default 0).") var ectC: Float?
    @Option(parsing: .unconditional, help: "With --classes: distill the --init model's classifier-free guided sampler at this weight w, so one step samples as guided EDM does (1: plain ECT, the default with --method; the recipe uses 2, for class accuracy, with counts and budgets under 30 minutes, and 1 from 30 minutes on, where the EDM phase samples better unguided: walkthrough 05 section 6).")
    var ectGuidance: Double?
    @Flag(help: "Distill the --init model's ODE: x_r is one Euler step of it from x_t instead of a point on x_t's noise line (consistency distillation from the start model).")
    var ectDistill = false

    static func flag(for input: MethodInput) -> String? { input == .diffusionModel ? "--init EDM.safetensors" : nil }

    var givenFlags: [String] {
        [("--init", initialization != nil), ("--ect-q", ectQ != nil), ("--ect-stages", ectStages != nil),
         ("--ect-last-stage", ectLastStage != nil), ("--ect-mapping", ectMapping != nil), ("--ect-weighting", ectWeighting != nil),
         ("--ect-c", ectC != nil), ("--ect-guidance", ectGuidance != nil), ("--ect-distill", ectDistill)].filter(\.1).map(\.0)
    }

    func validate() throws {
        if let ectQ, !(ectQ > 1 && ectQ.isFinite) { throw ValidationError("--ect-q must be a number above 1.") }
        if let ectStages, ectStages < 1 { throw ValidationError("--ect-stages must be at least 1.") }
        if let ectLastStage, !(ectLastStage > 0 && ectLastStage < 1) {
            throw ValidationError("--ect-last-stage must be a share between 0 and 1 (0.15: the last stage takes 15% of the iterations).")
        }
        if let ectC, !(ectC >= 0 && ectC.isFinite) { throw ValidationError("--ect-c must be a number >= 0.") }
        if let ectGuidance, !(ectGuidance >= 0 && ectGuidance.isFinite) {
            throw ValidationError("--ect-guidance must be a number of at least 0 (1: no guidance; 2 is usual).")
        }
    }

    func options() throws -> any MethodOptions { options(over: ECTConfig()) }

    /// The given flags over `base`.
    func options(over base: ECTConfig) -> ECTConfig {
        var o = base
        if let ectQ { o.q = ectQ }
        if let ectStages { o.stages = ectStages }
        if let ectLastStage { o.lastStageShare = ectLastStage }
        if let ectMapping { o.mapping = ectMapping }
        if let ectWeighting { o.weighting = ectWeighting }
        if let ectC { o.huberC = ectC }
        if let ectGuidance { o.guidance = ectGuidance }
        if ectDistill { o.distill = true }
        return o
    }

    var inputs: [MethodInput: URL] { initialization.map { [.diffusionModel: URL(fileURLWithPath: $0)] } ?? [:] }
}

struct PretrainingOptions: ParsableArguments {
    static let defaultFraction = ImageRecipe.pretrainFraction
    @Option(parsing: .unconditional, help: "With --time: the share of the budget for the EDM model (default \(PretrainingOptions.defaultFraction)).") var pretrainFraction: Double?
    @Option(parsing: .unconditional, help: "With --iters: the EDM model's iterations (then --iters counts the second phase; images without --method and without this option split --iters between the phases by --pretrain-fraction).") var pretrainIters: Int?
    @Option(parsing: .unconditional, help: "The EDM model's learning rate (default: \(ImageRecipe.pretrainLearningRate) for images without --method, else as --lr's default for the network).") var pretrainLr: Float?

    @Option(parsing: .unconditional, help: "The share of the EDM model's run over which its learning rate falls to zero (default: \(ImageRecipe.pretrainLearningRateDecay.map { String($0) } ?? "none") for images without --method, else none).") var pretrainLrDecay: Double?

    var givenFlags: [String] {
        [("--pretrain-fraction", pretrainFraction != nil), ("--pretrain-iters", pretrainIters != nil), ("--pretrain-lr", pretrainLr != nil),
         ("--pretrain-lr-decay", pretrainLrDecay != nil)]
            .filter(\.1).map(\.0)
    }

    func validate() throws {
        if let pretrainFraction, !(pretrainFraction > 0 && pretrainFraction < 1) { throw ValidationError("--pretrain-fraction must be in (0, 1).") }
        if let pretrainIters, pretrainIters < 1 { throw ValidationError("--pretrain-iters must be positive.") }
        if let pretrainLr, !(pretrainLr > 0 && pretrainLr.isFinite) { throw ValidationError("--pretrain-lr must be a positive number.") }
        if let pretrainLrDecay, !(pretrainLrDecay > 0 && pretrainLrDecay <= 1) { throw ValidationError("--pretrain-lr-decay must be a share of the run in (0, 1], e.g. 0.3.") }
    }
}
