// cmkit bench: times the bench-models.md workload and prints one JSON line (release builds only make sense).
import ArgumentParser
import Foundation
import CKTensor
import CKNN
import CKConsistency

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time one full training step and one-step sampling of 256; print one JSON line.",
        discussion: "iCT with N = 1281 noise levels: a batch of 128 2-D points for mlp-toy, 64 random 1x28x28 images "
            + "for unet-s and unet-xs. Latent CT for latent-net and latent-net-gn: 64 latents of 4x7x7 (Fashion-MNIST's "
            + "with `train-autoencoder --latent-channels 4`), N = 641, OT coupling, Cauchy and diffusion loss. "
            + "Build with -c release: debug builds are many times slower.")

    @Option(help: "Network to time: \(ModelName.allValueStrings.joined(separator: " | ")).")
    var model: ModelName = .unetS
    @Flag(help: "Instead: time the batch transforms (exact assignment at batches 64-512 of 784-d items, distances included; BSS on 64 x 1 x 28 x 28).")
    var transforms = false
    @OptionGroup var threading: ThreadOptions
    @Option(help: "Timed training steps (default: 500 mlp-toy, 20 unet-s).")
    var steps: Int?
    @Option(help: "Untimed warm-up steps (default: 50 mlp-toy, 3 unet-s).")
    var warmup: Int?
    @Flag(help: "Only print the OpenBLAS kernel set in use (cmkit restarts itself with a better one when OpenBLAS falls back to its generic kernels on a CPU it does not know).")
    var blasCore = false

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1.") }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must not be negative.") }
    }

    func run() throws {
        if blasCore { return print(BLASKernel.current) }
        if transforms { return benchTransforms() }
        let toy = model == .mlpToy
        var rng = SplitMix64(seed: 0)
        // Only the batch's shape matters for timing: points in the toy board's range, images in [-1, 1],
        // latents normalised to std 0.5 (sigma_data).
        let batch: Tensor
        switch model {
        case .mlpToy: batch = Tensor.uniform(shape: [128, 2], low: -0.866, high: 0.866, rng: &rng)
        case .latentNet, .latentNetGN: batch = Tensor.normal(shape: [64, 4, 7, 7], rng: &rng) * 0.5
        case .unetS, .unetXS: batch = Tensor.uniform(shape: [64, 1, 28, 28], low: -1, high: 1, rng: &rng)
        }
        let result = Benchmark.run(model: model, batch: batch, threads: threading.threads ?? Parallel.threadCount,
                                   timedSteps: steps ?? (toy ? 500 : 20), warmupSteps: warmup ?? (toy ? 50 : 3),
                                   sampleRepetitions: toy ? 50 : 5,
                                   progress: { FileHandle.standardError.write(("bench: " + $0 + "\n").data(using: .utf8)!) })
        print(result.json)
    }
}

extension Bench {
    /// One JSON line per workload: the median of `repetitions` timed calls after one warm-up.
    func benchTransforms() {
        threading.apply()
        func median(_ repetitions: Int, _ body: () -> Void) -> Double {
            body()
            var times: [Double] = []
            for _ in 0..<repetitions { let t0 = Clock.seconds(); body(); times.append(Clock.seconds() - t0) }
            return times.sorted()[times.count / 2]
        }
        var rng = SplitMix64(seed: 0)
        for (b, mode) in [(64, NoiseAssignment.exact), (128, .exact), (256, .exact), (512, .exact), (256, .quantized)] {
            let x = Tensor.uniform(shape: [b, 784], low: -1, high: 1, rng: &rng), z = Tensor.normal(shape: [b, 784], rng: &rng)
            let s = median(b >= 512 ? 5 : 21) { _ = noiseAssignment(batch: x, noise: z, mode: mode) }
            print("{\"workload\": \"assignment\", \"mode\": \"\(mode.rawValue)\", \"batch\": \(b), \"dim\": 784, \"threads\": \(Parallel.threadCount), \"seconds_median\": \(s)}")
        }
        let images = Tensor.uniform(shape: [64, 1, 28, 28], low: -1, high: 1, rng: &rng)
        let s = median(51) { _ = batchStyleStandardization(images, ratio: 0.1, reference: 3) }
        print("{\"workload\": \"bss\", \"shape\": [64, 1, 28, 28], \"ratio\": 0.1, \"threads\": \(Parallel.threadCount), \"seconds_median\": \(s)}")
    }
}
