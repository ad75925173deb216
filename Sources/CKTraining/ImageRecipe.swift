// What `cmkit train` does on images when no method is given: the best consistency model found for a few
// minutes of two CPU cores (notebooks-md/05-quality-per-minute.md has the runs behind every number). An EDM
// model is trained first on the small network, then tuned into a consistency model with ECT at one coarse
// Delta t: diffusion training is the cheapest way to learn the data, and tuning needs far fewer iterations
// than consistency training from scratch.
import CKNN
import CKConsistency
import CKDatasets

public enum ImageRecipe {
    public static let method = MethodName.ect
    /// unet-xs: at equal minutes its 2.3x more iterations beat unet-s's capacity.
    public static let model = ModelName.unetXS
    public static let batchSize = 32
    /// The tuning phase's learning rate, and the share of its run over which it falls to zero: 4e-4 falling over
    /// the second half gave one step 51.4 where a constant 2e-4 gave 55.5 (unconditional, EDM 2,794 + ECT 2,205
    /// iterations; 8e-4 gave 53.9, 2e-4 falling over the last 30% 56.1), and 35.0 where 2e-4 gave 38.5 for the
    /// class-conditional recipe (ECT 1,850 iterations; walkthrough 05).
    public static let learningRate: Float = 4e-4
    public static let learningRateDecay: Double? = 0.5
    /// The EDM phase's learning rate.
    public static let pretrainLearningRate: Float = 1e-3
    /// The EDM phase's learning-rate decay, the share of its run over which the rate falls to zero: Heun 8 steps
    /// 48.7 where the constant rate gave 52.9 (2,794 iterations), so the guided sampler a class-conditional
    /// tuning phase distills is better (for unconditional tuning, which follows the data's noise lines, it
    /// made no difference beyond what one seed tells: 54.5 against 51.4 at one step).
    public static let pretrainLearningRateDecay: Double? = 0.3
    /// The share of the budget (or of the iterations, with a count) for the EDM phase.
    public static let pretrainFraction = 0.5

    /// ECT with one Delta t stage at q 16 (r = t (1 - (1 + 8 sigmoid(-t)) / 16)): the gap never shrinks. With
    /// the gap shrinking 16-fold halfway (two stages), one-step quality rose for about a hundred iterations
    /// after the switch and then fell for the rest of the run, so longer budgets gave worse models (EDM 2,794
    /// + ECT 2,205 iterations: 97.6 at one step in two stages, 55.5 in one; walkthrough 05). A class-conditional
    /// run keeps the two stages its class accuracy was measured with and distills the EDM phase's sampler with
    /// classifier-free guidance (`classGuidance(forBudget:)`), which keeps one-step samples in their class.
    /// `budget`: the run's `--time` in seconds (nil for a count), which picks the guidance weight.
    public static func options(classConditional: Bool, budget: Double? = nil) -> ECTConfig {
        var o = ECTConfig()
        o.q = 16
        o.stages = classConditional ? 2 : 1
        if classConditional { o.guidance = classGuidance(forBudget: budget) }
        return o
    }

    /// The weight for counts and budgets under `unguidedFromSeconds`. At the counts of two `--time 10m` runs
    /// (seeds 0 and 1) w = 2 gave one step 30.4 and 36.3 with 90.2% and 87.1% of samples in their class, where
    /// w = 3 gave 37.6 and 40.7 (93.8%, 90.2%) and unguided tuning 77% (walkthrough 05 section 6).
    public static let classGuidance = 2.0

    /// Budgets from this long on (seconds) tune without guidance: the EDM phase of an hour samples far better
    /// unguided (Heun 8 steps: 11.5 at w = 1, 12.0 at w = 2, 21.6 at w = 3), so tuning at w = 1 gave one step
    /// 13.0 where w = 2 gave 19.8 and w = 3 37.0, still 85.5% of samples in their class (walkthrough 05 section 6).
    public static let unguidedFromSeconds = 30 * 60.0

    /// The tuning phase's guidance weight for a class-conditional run of `budget` seconds (nil: a count).
    public static func classGuidance(forBudget budget: Double?) -> Double {
        guard let budget, budget >= unguidedFromSeconds else { return classGuidance }
        return 1
    }

    /// Data that comes with labels trains class-conditional models unless told otherwise (`--no-classes`), and
    /// such a model samples its classes in turn: at ten minutes' counts one step gave FD 35.0 over all ten
    /// Fashion-MNIST classes where the unconditional recipe gave 51.4 (walkthrough 05); the labels cost nothing.
    public static func trainsClasses(on data: DataSpec) -> Bool { data.comesWithLabels }

    /// Fills what `request` leaves open with the recipe (what a user gave stays).
    public static func apply(to request: inout RunRequest) {
        request.method = method
        request.model = request.model ?? model
        request.batchSize = request.batchSize ?? batchSize
        request.learningRate = request.learningRate ?? learningRate
        request.learningRateDecay = request.learningRateDecay ?? learningRateDecay
    }

    /// The EDM phase's iterations when a run of `iterations` in all is asked for, by `fraction`.
    public static func pretrainIterations(of iterations: Int, fraction: Double = pretrainFraction) -> Int {
        min(iterations - 1, max(1, Int((Double(iterations) * fraction).rounded())))
    }
}
