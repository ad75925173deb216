// The benchmark workload of bench-models.md: timed full iCT steps and one-step sampling of 256; for the
// latent networks, timed full iLCT steps (OT coupling, Cauchy loss, diffusion loss) on a batch of latents.
import CKTensor
import CKNN
import Glibc

public struct BenchmarkResult: Sendable {
    public var model: String, threads: Int, batch: Int
    public var stepSecondsMedian: Double, stepSecondsMin: Double, sample256Seconds: Double
    /// The 90th percentile of the timed steps: with the minimum, how much the machine's pace moved during the run.
    public var stepSecondsP90: Double
    public var params: Int, timedSteps: Int, warmupSteps: Int, sampleRepetitions: Int
    public var maxRSSMegabytes: Double
    /// Medians of the step's two parts: the forward and backward passes (all pieces), and the optimizer's update
    /// (which also adds the pieces' gradients). Each is at most the step's median.
    public var gradientSecondsMedian: Double, updateSecondsMedian: Double

    /// One JSON line with the PyTorch port's field names first.
    public var json: String {
        func f(_ x: Double) -> String { String(x) }
        return "{\"model\": \"\(model)\", \"threads\": \(threads), \"batch\": \(batch), \"step_s_median\": \(f(stepSecondsMedian)), "
            + "\"step_s_min\": \(f(stepSecondsMin)), \"sample256_s\": \(f(sample256Seconds)), \"params\": \(params), "
            + "\"timed_steps\": \(timedSteps), \"warmup_steps\": \(warmupSteps), \"sample_reps\": \(sampleRepetitions), "
            + "\"step_s_p90\": \(f(stepSecondsP90)), \"max_rss_mb\": \(f(maxRSSMegabytes)), "
            + "\"gradients_s_median\": \(f(gradientSecondsMedian)), \"update_s_median\": \(f(updateSecondsMedian)), "
            + "\"blas_core\": \"\(BLASKernel.current)\", \"allocator\": \"\(MemoryAllocator.current)\", \"impl\": \"consistencykit\"}"
    }
}

public enum Benchmark {
    /// Times `timedSteps` full iCT steps (pair sampling at N = 1281, noise, teacher forward without
    /// recording, student forward, loss, backward, Adam) on one fixed batch, then one-step sampling of 256.
    /// The latent networks get latent CT's step instead, at its final N = 641, with every iLCT switch on.
    public static func run(model name: ModelName, batch: Tensor, threads: Int, timedSteps: Int, warmupSteps: Int,
                           sampleRepetitions: Int, progress: (String) -> Void = { _ in }) -> BenchmarkResult {
        Parallel.configure(threads: threads)
        var initRNG = SplitMix64(seed: 0)
        let network = name.make(sampleShape: Array(batch.shape.dropFirst()), rng: &initRNG)
        let learningRate: Float = name == .mlpToy ? 3e-4 : 1e-4
        var optimizer = Adam(parameters: network.parameters, learningRate: learningRate)
        let latent = name.isLatentNetwork
        var config = ICTConfig(totalSteps: 1)
        config.fixedPointCount = latent ? 641 : 1281
        let tables = SigmaPairTables()
        let coupling = BatchTransforms.otCoupling()
        var rng = SplitMix64(seed: 1)

        // As the trainer does it: the batch in one piece per core (CoreShards) when it is large enough.
        // Returns the seconds of its two parts: forward and backward, then the update.
        @discardableResult
        func step(_ k: Int) -> (gradients: Double, update: Double) {
            let start = Clock.seconds()
            var x = batch, noise: Tensor? = nil
            if latent { (x, noise) = coupling.apply(to: batch, rng: &rng) }
            let pieces = CoreShards.pieces(of: .whole(x.shape[0]))
            let result = try! CoreShards.gradients(of: network.parameters, pieces: pieces, rng: &rng) { piece, rng in
                let loss = latent
                    ? lctLoss(network: network, batch: x, step: k, config: config, lct: LCTConfig(), tables: tables,
                              noise: noise, shard: piece, rng: &rng).loss
                    : ictLoss(network: network, batch: x, step: k, config: config, tables: tables, shard: piece, rng: &rng).loss
                return (loss, ())
            }
            let backwardDone = Clock.seconds()
            applyGradients(summing: result.parts, optimizer: &optimizer)
            return (backwardDone - start, Clock.seconds() - backwardDone)
        }
        for k in 0..<warmupSteps { step(k) }
        progress("warm-up done (\(warmupSteps) steps)")
        var times: [Double] = [], gradientTimes: [Double] = [], updateTimes: [Double] = []
        for k in 0..<timedSteps {
            let t0 = Clock.seconds()
            let parts = step(warmupSteps + k)
            times.append(Clock.seconds() - t0)
            gradientTimes.append(parts.gradients)
            updateTimes.append(parts.update)
            if timedSteps >= 10 && (k + 1) % max(1, timedSteps / 5) == 0 { progress("timed \(k + 1)/\(timedSteps)") }
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return .nan }
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        times.sort()

        func sampleOnce() { _ = try? sampleConsistency(network: network, count: 256, sigmas: [80], seed: 7) }
        sampleOnce()
        var sampleTimes: [Double] = []
        for _ in 0..<sampleRepetitions {
            let t0 = Clock.seconds()
            sampleOnce()
            sampleTimes.append(Clock.seconds() - t0)
        }
        sampleTimes.sort()
        return BenchmarkResult(model: name.rawValue, threads: threads, batch: batch.shape[0],
                               stepSecondsMedian: median(times), stepSecondsMin: times.first ?? .nan,
                               sample256Seconds: sampleTimes[sampleTimes.count / 2],
                               stepSecondsP90: times.isEmpty ? .nan : times[((times.count - 1) * 9 + 9) / 10],
                               params: network.parameterCount,
                               timedSteps: timedSteps, warmupSteps: warmupSteps, sampleRepetitions: sampleRepetitions,
                               maxRSSMegabytes: maxRSSMegabytes(), gradientSecondsMedian: median(gradientTimes),
                               updateSecondsMedian: median(updateTimes))
    }

    /// Peak resident set size of this process so far (Linux reports ru_maxrss in KiB).
    public static func maxRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
