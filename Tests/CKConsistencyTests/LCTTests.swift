// Latent CT: the scaling-c schedule against the vectors, the diffusion-loss selection and term, latent
// normalisation, and end to end: the autoencoder's round trip improves with training, and a short latent
// run brings generated latents closer to the data's.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKEvaluation
import CKTestSupport

final class LCTTests: XCTestCase {
    func testAdaptiveScalingCMatchesVectors() throws {
        let v = try Vectors.load("robust_losses.json")
        // Kept at the former 2e-6 where that is tighter than the file's bound for whole losses.
        let rtol = try min(Float(v.dict("tolerance").double("rel")), 2e-6)
        for c in try v.dicts("lct_adaptive_c") {
            let n = try c.int("N_points")
            // firstStagePoints 0: the fitted formula at every N, as the vectors give it.
            assertClose(lctScalingC(pointCount: n, firstStagePoints: 0, sampleSize: 196), try Float(c.double("c")), atol: 0, rtol: rtol, "N=\(n)")
        }
        // During the first stage (N = s0 + 1) c is iCT's 0.00054 sqrt(d).
        XCTAssertEqual(lctScalingC(pointCount: 11, firstStagePoints: 11, sampleSize: 196), ictHuberC(sampleSize: 196))
        assertClose(lctScalingC(pointCount: 21, firstStagePoints: 11, sampleSize: 196), 0.013635315627962432, rtol: 2e-6)
    }

    func testDiffusionLossSelectsTheLowNoiseQuarter() {
        // N = 11, fraction 0.75: descending index >= floor(8.25) = 8, i.e. ascending 0-based index <= 2.
        let mask = diffusionLossMask(studentIndices: Array(1...10), pointCount: 11, fraction: 0.75)
        XCTAssertEqual(mask, [true, true, false, false, false, false, false, false, false, false])
    }

    func testDiffusionTermIsTheWeightedMeanOverSelectedSamplesOnly() {
        var rng = SplitMix64(seed: 8)
        let network = ModelName.latentNet.make(sampleShape: [4, 7, 7], rng: &rng)
        let x = Tensor.normal(shape: [16, 4, 7, 7], rng: &rng) * 0.5
        let config = ICTConfig(totalSteps: 100, s0: 10, s1: 640)
        var off = LCTConfig(), on = LCTConfig()
        off.diffusionLoss = false
        on.diffusionLoss = true
        func loss(_ lct: LCTConfig) -> LCTLossResult {
            var r = SplitMix64(seed: 99)
            return Tape.withoutRecording { lctLoss(network: network, batch: x, step: 0, config: config, lct: lct, tables: SigmaPairTables(), rng: &r) }
        }
        var r = SplitMix64(seed: 99)
        let pair = Tape.withoutRecording { consistencyPair(network: network, batch: x, step: 0, config: config, tables: SigmaPairTables(), rng: &r) }
        let mask = diffusionLossMask(studentIndices: pair.indices.map { $0 + 1 }, pointCount: pair.table.sigmas.count, fraction: 0.75)
        let per = x.count / 16
        var total = 0.0, selected = 0
        for b in 0..<16 where mask[b] {
            let s = Double(pair.studentSigmas[b])
            var mse = 0.0
            for j in 0..<per { let d = Double(pair.student.storage[b * per + j] - x.storage[b * per + j]); mse += d * d }
            total += (1 / (s * s) + 4) * mse / Double(per)
            selected += 1
        }
        XCTAssertGreaterThan(selected, 0, "the seed should select some low-noise samples")
        XCTAssertEqual(loss(on).diffusionSamples, selected)
        let expected = 5 * total / Double(selected)
        assertClose(Double(loss(on).loss.scalar - loss(off).loss.scalar), expected, atol: 1e-3, rtol: 1e-3, "diffusion term")
    }

    func testLatentNormalisationHasStdHalfAndInverts() {
        var rng = SplitMix64(seed: 2)
        let z = Tensor.normal(shape: [500, 2, 3, 3], rng: &rng) * 3 + 1
        let stats = LatentStatistics.measure(z)
        let x = stats.normalize(z)
        let again = LatentStatistics.measure(x)
        assertClose(again.std.storage, [Float](repeating: 0.5, count: 18), atol: 1e-4)
        assertClose(again.mean.storage, [Float](repeating: 0, count: 18), atol: 1e-4)
        assertClose(stats.denormalize(x).storage, z.storage, atol: 1e-4, rtol: 1e-5)
    }

    func testNonScalingLayerNormNetworkHasNoLearnedScale() {
        var rng = SplitMix64(seed: 3)
        let nsln = ModelName.latentNet.make(sampleShape: [4, 7, 7], rng: &rng)
        let gn = ModelName.latentNetGN.make(sampleShape: [4, 7, 7], rng: &rng)
        XCTAssertFalse(nsln.parameters.contains { $0.name.contains("norm") && $0.name.hasSuffix("weight") })
        XCTAssertTrue(gn.parameters.contains { $0.name.contains("norm") && $0.name.hasSuffix("weight") })
        XCTAssertTrue(nsln.parameters.filter { $0.name.contains("norm") }.allSatisfy { $0.shape == [64, 1, 1] })
    }

    /// One autoencoder shared by the end-to-end tests (trained once per test run).
    private static var trained: (space: LatentSpace, images: Tensor, before: Double)?
    private func trainedAutoencoder() throws -> (space: LatentSpace, images: Tensor, before: Double) {
        if let t = Self.trained { return t }
        let images = Shapes.batch(count: 512, seed: 1)
        var config = AutoencoderTrainingConfig()
        config.width = 16
        config.iterations = 300
        config.batchSize = 32
        config.learningRate = 2e-3
        var untrained = config
        untrained.iterations = 0
        let before = reconstructionError(try trainAutoencoder(images: images, config: untrained), images: images)
        let t = (try trainAutoencoder(images: images, config: config), images, before)
        Self.trained = t
        return t
    }

    func testAutoencoderRoundTripImprovesWithTraining() throws {
        let (space, images, before) = try trainedAutoencoder()
        let after = reconstructionError(space, images: images)
        XCTAssertLessThan(after, 0.3 * before, "reconstruction MSE before \(before), after \(after)")
        // The checkpoint keeps weights and statistics.
        var c = Checkpoint()
        space.append(to: &c, prefix: "autoencoder.")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ae-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try c.write(to: url)
        let back = try LatentSpace.load(from: try Checkpoint.read(from: url), prefix: "autoencoder.", path: url.path)
        XCTAssertEqual(back.statistics.std.storage, space.statistics.std.storage)
        XCTAssertEqual(reconstructionError(back, images: images), after)
    }

    func testShortLatentRunBringsSamplesCloserToTheData() throws {
        let (space, images, _) = try trainedAutoencoder()
        let latents = try space.encode(images)
        var config = TrainingConfig(method: .lct)
        config.model = .latentNet
        config.data = "shapes"
        config.sampleShape = space.autoencoder.latentShape
        config.iterations = 600
        config.batchSize = 32
        config.learningRate = 1e-3
        config.emaDecay = 0.95
        let trainer = try Trainer(config: config, inputs: MethodInputs(autoencoder: space))
        func distance() throws -> Double {
            let samples = try trainer.withEMAWeights {
                try sampleConsistency(network: trainer.network, count: 512, sigmas: [80], seed: 3)
            }
            return slicedWasserstein2(samples, latents)
        }
        let before = try distance()
        try train(trainer, until: config.iterations, data: TensorDataset(latents))
        let after = try distance()
        // Measured: 0.71x to 0.78x over seeds and thread counts (the run is chaotic in the last bits); 300
        // iterations gave 0.81x to 0.99x.
        XCTAssertLessThan(after, 0.85 * before, "latent sliced W2 before \(before), after \(after)")
        XCTAssertEqual(trainer.images(of: latents.slice(0..<2)).shape, [2, 3, 32, 32])
    }
}

final class LatentTailTests: XCTestCase {
    func testGaussianValuesHaveNoExcessKurtosisAndStudentTDoes() {
        var rng = SplitMix64(seed: 6)
        let gauss: [Double] = (0..<200_000).map { _ in rng.normalDouble() }
        let g = TailStatistics(gauss)
        XCTAssertEqual(g.excessKurtosis, 0, accuracy: 0.1)
        XCTAssertLessThan(g.beyondFive, 1e-4)
        // Student t with 5 degrees of freedom: excess kurtosis 6, heavy tails.
        let t5 = (0..<200_000).map { _ -> Double in
            let z = rng.normalDouble()
            var chi = 0.0
            for _ in 0..<5 { let u = rng.normalDouble(); chi += u * u }
            return z / (chi / 5).squareRoot()
        }
        let t = TailStatistics(t5)
        XCTAssertGreaterThan(t.excessKurtosis, 3)
        XCTAssertGreaterThan(t.beyondFive, 1e-3)
        let h = densityHistogram(gauss, limit: 4, bins: 8)
        XCTAssertEqual(h.centers.first, -3.5)
        XCTAssertEqual(h.density.reduce(0, +) * 1.0, 1, accuracy: 0.01)
    }
}
