// Zero-shot editing (CM Algorithm 4): the operators' projections on random tensors, what every edit must keep of its
// input on iCT, ECT and CTM networks, interpolation's ends, denoising's start, the errors, and inpainting that beats
// filling with the training mean on a briefly trained toy model.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKDatasets
import CKTraining
import CKTestSupport

final class EditingTests: XCTestCase {
    /// An untrained network of `method` as a loaded model (the properties below hold for any weights).
    private func model(_ method: MethodName, shape: [Int] = [3, 8, 8], seed: UInt64 = 1) -> TrainedModel {
        var config = TrainingConfig(method: method)
        config.model = shape.count == 3 ? .unetXS : .mlpToy
        config.sampleShape = shape
        config.seed = seed
        let context: SamplingContext
        switch method {
        case .ect: context = SamplingContext(boundary: .edm)
        case .ctm: context = SamplingContext(trainingGridPoints: 18)
        default: context = SamplingContext()
        }
        return TrainedModel(config: config, network: config.makeNetwork(), weights: .ema, step: 0, context: context)
    }

    /// The consistency models' default plan for `steps`.
    private func plan(_ model: TrainedModel, steps: Int) -> SamplingPlan { SamplingPlan(kind: model.defaultSampler, steps: steps) }

    private func images(_ count: Int, shape: [Int] = [3, 8, 8], seed: UInt64 = 9) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor.uniform(shape: [count] + shape, low: -1, high: 1, rng: &rng)
    }

    /// A random 0/1 mask of `shape`.
    private func mask(_ shape: [Int], seed: UInt64 = 3) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in rng.uniformDouble() < 0.5 ? 0 : 1 })
    }

    /// Row r of (N, ...) repeated for each of its `variations` results.
    private func repeated(_ t: Tensor, _ variations: Int) -> Tensor {
        let per = t.count / t.shape[0]
        return Tensor(shape: [t.shape[0] * variations] + t.shape.dropFirst(),
                      storage: (0..<t.shape[0]).flatMap { r in (0..<variations).flatMap { _ in t.storage[(r * per)..<((r + 1) * per)] } })
    }

    // MARK: - Operators on random tensors

    func testProjectionsReproduceTheObservation() throws {
        var rng = SplitMix64(seed: 4)
        let x = Tensor.normal(shape: [5, 3, 8, 8], rng: &rng), other = Tensor.normal(shape: [5, 3, 8, 8], rng: &rng)
        let operators: [(String, any EditOperator)] = [
            ("inpaint (1, H, W)", try Inpainting(mask: mask([1, 8, 8]), sampleShape: [3, 8, 8])),
            ("inpaint (C, H, W)", try Inpainting(mask: mask([3, 8, 8]), sampleShape: [3, 8, 8])),
            ("superres 2", try BlockAveraging(factor: 2, sampleShape: [3, 8, 8])),
            ("superres 4", try BlockAveraging(factor: 4, sampleShape: [3, 8, 8])),
            ("colorize", try Luminance(sampleShape: [3, 8, 8])),
        ]
        for (name, op) in operators {
            let y = op.apply(other)
            let projected = op.project(x, onto: y)
            // A(x + A⁺(y - A x)) = A x + (A A⁺)(y - A x) = y, since A A⁺ = I for these full-row-rank A.
            assertClose(op.apply(projected).storage, y.storage, atol: 1e-5, rtol: 0, "\(name): A(project(x, y)) == y")
            assertClose(op.apply(op.pseudoInverse(y)).storage, y.storage, atol: 1e-5, rtol: 0, "\(name): A A⁺ y == y")
            // Projecting onto x's own observation changes nothing (x's row-space part is already y).
            assertClose(op.project(x, onto: op.apply(x)).storage, x.storage, atol: 1e-5, rtol: 0, "\(name): project(x, A x) == x")
            // The part outside A's row space is x's: project(x, y) - x lies in the row space, so projecting again is idempotent.
            assertClose(op.project(projected, onto: y).storage, projected.storage, atol: 1e-5, rtol: 0, "\(name): idempotent")
        }
        // Inpainting copies: the known elements of the projection are y's bits, the others x's.
        let inpaint = try Inpainting(mask: mask([1, 8, 8]), sampleShape: [3, 8, 8])
        let projected = inpaint.project(x, onto: inpaint.apply(other))
        let keep = mask([1, 8, 8]).storage
        for i in 0..<x.count {
            XCTAssertEqual(projected.storage[i], keep[i % 64] == 1 ? other.storage[i] : x.storage[i])
        }
        // Block averaging by hand: the mean of one 2x2 block.
        let down = try BlockAveraging(factor: 2, sampleShape: [3, 8, 8]).apply(x)
        XCTAssertEqual(down.shape, [5, 3, 4, 4])
        let block = [x.storage[0], x.storage[1], x.storage[8], x.storage[9]].reduce(0, +) / 4
        XCTAssertEqual(down.storage[0], block, accuracy: 1e-6)
        // The luminance direction is the BT.601 weights normalised: unit length, positive.
        let q = Luminance.direction
        XCTAssertEqual(q.map { Double($0) * Double($0) }.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(Double(q[1] / q[0]), 0.5870 / 0.2989, accuracy: 1e-6)
    }

    // MARK: - What each edit keeps of its input

    func testInpaintingKeepsTheKnownPixelsBitForBit() throws {
        let inputs = images(2)
        let keep = mask([1, 8, 8])
        for method in [MethodName.ict, .ect, .ctm] {
            let m = model(method)
            for steps in [1, 2] {
                let out = try m.edit(inputs, task: .inpaint(mask: keep), plan: plan(m, steps: steps), variations: 2, seed: 7)
                XCTAssertEqual(out.shape, [4, 3, 8, 8])
                let want = repeated(inputs, 2)
                var unknownChanged = false
                for i in 0..<out.count {
                    if keep.storage[i % 64] == 1 {
                        XCTAssertEqual(out.storage[i].bitPattern, want.storage[i].bitPattern, "\(method) \(steps) steps: known element \(i)")
                    } else if out.storage[i] != want.storage[i] { unknownChanged = true }
                }
                XCTAssertTrue(unknownChanged, "\(method): the masked region was filled")
                // Two variations of one input differ where the model fills in.
                XCTAssertNotEqual(Array(out.storage[0..<192]), Array(out.storage[192..<384]), "\(method): variations differ")
            }
        }
    }

    func testSuperResolutionAveragesBackToTheInput() throws {
        let inputs = images(2)
        for method in [MethodName.ict, .ect, .ctm] {
            let m = model(method)
            for factor in [2, 4] {
                let op = try BlockAveraging(factor: factor, sampleShape: [3, 8, 8])
                let out = try m.edit(inputs, task: .superResolution(factor: factor), plan: plan(m, steps: 2), variations: 2, seed: 1)
                // Only float rounding: the block mean of x + up(y - down(x)) is down(x) + (y - down(x)).
                assertClose(op.apply(out).storage, op.apply(repeated(inputs, 2)).storage, atol: 1e-5, rtol: 0,
                            "\(method) x\(factor): block means of the result")
            }
        }
    }

    func testColorizationKeepsTheLuminance() throws {
        let inputs = images(2)
        for method in [MethodName.ict, .ect, .ctm] {
            let m = model(method)
            let out = try m.edit(inputs, task: .colorize, plan: plan(m, steps: 2), variations: 2, seed: 2)
            assertClose(Luminance.luminance(out).storage, Luminance.luminance(repeated(inputs, 2)).storage, atol: 1e-5, rtol: 0,
                        "\(method): luminance of the result")
            // A gray input is the luminance itself.
            let gray = images(2, shape: [1, 8, 8], seed: 5)
            let fromGray = try m.edit(gray, task: .colorize, plan: plan(m, steps: 1), variations: 1, seed: 2)
            XCTAssertEqual(fromGray.shape, [2, 3, 8, 8])
            assertClose(Luminance.luminance(fromGray).storage, gray.storage, atol: 1e-5, rtol: 0, "\(method): luminance of a gray input")
        }
    }

    func testDenoisingStartsFromTheNoisyInputAtItsLevel() throws {
        let m = model(.ict)
        let noisy = images(3)
        // One step: f(x, sigma) of the input itself, clipped; no noise is drawn, so every variation and seed agree.
        let one = try m.edit(noisy, task: .denoise(sigma: 0.5), plan: plan(m, steps: 1), variations: 2, seed: 4)
        let direct = Tape.withoutRecording {
            Preconditioning().consistency(m.network, noisy, sigma: [0.5, 0.5, 0.5]).clamped(-1, 1)
        }
        // (Bit for bit apart from BLAS blocking: the edit runs 6 rows in one batch, the direct call 3.)
        assertClose(one.storage, repeated(direct, 2).storage, atol: 1e-5, rtol: 0, "one denoising step is f(x, sigma)")
        // Equal up to BLAS rounding: rows at other places of one GEMM may go through another kernel path
        // (1e-7 apart on an AMD EPYC host, bit for bit on an Intel one).
        assertClose(Array(one.storage[0..<192]), Array(one.storage[192..<384]), atol: 1e-5, rtol: 0, "no draws, so the variations agree")
        let two = try m.edit(noisy, task: .denoise(sigma: 0.5), plan: plan(m, steps: 2), variations: 2, seed: 4)
        XCTAssertNotEqual(Array(two.storage[0..<192]), Array(two.storage[192..<384]), "re-noising makes variations")
        // CTM jumps from sigma too.
        let ctm = model(.ctm)
        XCTAssertEqual(try ctm.edit(noisy, task: .denoise(sigma: 0.5), plan: plan(ctm, steps: 2)).shape, [3, 3, 8, 8])
        XCTAssertThrowsError(try m.edit(noisy, task: .denoise(sigma: 100), plan: plan(m, steps: 1))) { error in
            XCTAssertEqual(error as? SamplingError, .outOfRange(100, min: 0.002, max: 80))
        }
    }

    // MARK: - Interpolation

    func testInterpolationEndsAreThePlainSamplesOfTheTwoSeeds() throws {
        for (method, shape) in [(MethodName.ict, [3, 8, 8]), (.ect, [3, 8, 8]), (.ctm, [3, 8, 8]), (.ict, [2])] {
            let m = model(method, shape: shape)
            for steps in [1, 2] {
                let p = plan(m, steps: steps)
                let points = try m.interpolate(p, seeds: (3, 8), count: 5)
                let per = shape.reduce(1, *)
                XCTAssertEqual(points.shape, [5] + shape)
                let a = try m.sample(p, count: 1, seed: 3), b = try m.sample(p, count: 1, seed: 8)
                XCTAssertEqual(Array(points.storage[0..<per]), a.storage, "\(method) \(steps) steps: first end is seed 3's sample")
                XCTAssertEqual(Array(points.storage[(4 * per)...]), b.storage, "\(method) \(steps) steps: last end is seed 8's sample")
                XCTAssertNotEqual(Array(points.storage[(2 * per)..<(3 * per)]), a.storage, "the middle is neither end")
                XCTAssertNotEqual(Array(points.storage[(2 * per)..<(3 * per)]), b.storage, "the middle is neither end")
            }
        }
        XCTAssertThrowsError(try model(.ict).interpolate(SamplingPlan(kind: .consistency, steps: 1), seeds: (1, 2), count: 1)) {
            XCTAssertEqual($0 as? EditError, .badInterpolationCount(1))
        }
    }

    func testLatentModelsInterpolateButDoNotEditYet() throws {
        let url = try LegacyCheckpointTests.legacyCheckpoint("lct")
        defer { try? FileManager.default.removeItem(at: url) }
        let lct = try loadTrainedModel(from: url)
        let p = SamplingPlan(kind: .consistency, steps: 2)
        let points = try lct.interpolate(p, seeds: (1, 2), count: 3)
        let per = lct.outputShape.reduce(1, *)
        XCTAssertEqual(points.shape, [3] + lct.outputShape, "decoded images")
        XCTAssertEqual(Array(points.storage[0..<per]), try lct.sample(p, count: 1, seed: 1).storage)
        XCTAssertEqual(Array(points.storage[(2 * per)...]), try lct.sample(p, count: 1, seed: 2).storage)
        XCTAssertThrowsError(try lct.edit(Tensor(zeros: [1] + lct.outputShape), task: .colorize, plan: p)) {
            XCTAssertEqual($0 as? EditError, .latentModel(method: "lct"))
            XCTAssertTrue("\($0)".contains("not supported yet"), "\($0)")
        }
    }

    // MARK: - Errors

    func testEditsThatCannotWorkSayWhy() throws {
        let m = model(.ict), inputs = images(1)
        let p = plan(m, steps: 1)
        func expect(_ body: @autoclosure () throws -> Tensor, _ want: EditError, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { XCTAssertEqual($0 as? EditError, want, line: line) }
        }
        expect(try m.edit(images(1, shape: [1, 8, 8]), task: .inpaint(mask: mask([1, 8, 8])), plan: p),
               .imageShape(images: [1, 8, 8], model: [3, 8, 8]))
        expect(try m.edit(images(1, shape: [3, 4, 4]), task: .superResolution(factor: 2), plan: p),
               .imageShape(images: [3, 4, 4], model: [3, 8, 8]))
        expect(try m.edit(inputs, task: .inpaint(mask: mask([1, 4, 4])), plan: p), .maskShape(mask: [1, 4, 4], samples: [3, 8, 8]))
        expect(try m.edit(inputs, task: .inpaint(mask: Tensor(repeating: 0.5, shape: [1, 8, 8])), plan: p),
               .maskNotBinary(otherValues: 64, total: 64))
        expect(try m.edit(inputs, task: .superResolution(factor: 3), plan: p), .factorDoesNotDivide(factor: 3, height: 8, width: 8))
        let gray = model(.ict, shape: [1, 8, 8])
        expect(try gray.edit(images(1, shape: [1, 8, 8]), task: .colorize, plan: p), .needsColor(channels: 1))
        let edm = model(.edm)
        expect(try edm.edit(inputs, task: .colorize, plan: SamplingPlan(kind: .heun, steps: 2)), .notConsistencyModel(method: "edm"))
        expect(try m.edit(inputs, task: .colorize, plan: p, variations: 0), .badVariations(0))
        XCTAssertTrue("\(EditError.maskNotBinary(otherValues: 3, total: 64))".contains("black"))
    }

    // MARK: - Quality on a briefly trained model

    /// Points on the diagonal: (u, u) with u uniform in [-1, 1]. Knowing one coordinate determines the other, so a
    /// model that learned the set fills the second coordinate far better than the training mean (0) does.
    private struct Diagonal: Dataset {
        var sampleShape: [Int] { [2] }
        var count: Int? { nil }
        mutating func nextBatch(size: Int, rng: inout some RandomNumberGenerator) -> Tensor {
            Tensor(shape: [size, 2], storage: (0..<size).flatMap { _ -> [Float] in let u = Float(rng.uniformDouble() * 2 - 1); return [u, u] })
        }
    }

    /// 100 iterations of mlp-toy (about 20 s in a debug build): 16-step inpainting errors of 0.05 to 0.15 over seeds 1, 2,
    /// 3 and 5 (0.08 for seed 3) against 0.33 for the mean fill. One step starts at sigma_max, where the known coordinate
    /// is drowned in noise: an unconditional sample with the known part pasted in, no better than the mean.
    /// A start just above sigma_min, where f is nearly the identity, shows the start itself: the prior in the unknown
    /// part, zero without one; the known part is the input's either way.
    func testThePriorFillsTheStartsUnknownPart() throws {
        let m = model(.ict), inputs = images(2), keep = mask([1, 8, 8])
        let prior = Tensor(repeating: 0.6, shape: [3, 8, 8])
        let low = SamplingPlan(kind: .consistency, steps: 0, sigmas: [0.0025])
        let filled = try m.edit(inputs, task: .inpaint(mask: keep), plan: low, seed: 1, prior: prior)
        let plain = try m.edit(inputs, task: .inpaint(mask: keep), plan: low, seed: 1)
        for i in 0..<filled.count where keep.storage[i % 64] == 0 {
            XCTAssertEqual(filled.storage[i], 0.6, accuracy: 0.01, "element \(i) with the prior")
            XCTAssertEqual(plain.storage[i], 0, accuracy: 0.01, "element \(i) without")
        }
        for i in 0..<filled.count where keep.storage[i % 64] == 1 { XCTAssertEqual(filled.storage[i], inputs.storage[i]) }
    }

    func testEditLevelsStartLowAndStayAboveSigmaMin() {
        XCTAssertEqual(EditTask.levels(steps: 1, startingAt: 1.5), [1.5])
        XCTAssertEqual(EditTask.levels(steps: 2, startingAt: 1.5), [1.5, 0.375])
        let eight = EditTask.levels(steps: 8, startingAt: 1.5)
        XCTAssertEqual(eight.count, 8)
        XCTAssertEqual(eight.last!, 0.02, accuracy: 1e-5)
        XCTAssertNoThrow(try validateSigmas(eight))
        XCTAssertEqual(EditTask.levels(steps: 2, startingAt: 80), [80, 20])
    }

    func testInpaintingOnATrainedToyModelBeatsTheTrainingMean() throws {
        var config = TrainingConfig(method: .ict)
        config.model = .mlpToy
        config.sampleShape = [2]
        config.data = "toy:checkerboard"       // replaced by the diagonal below
        config.iterations = 100
        config.batchSize = 64
        config.learningRate = 1e-3
        config.emaDecay = 0.9
        config.s1 = 160
        config.seed = 3
        let trainer = try Trainer(config: config)
        try train(trainer, until: config.iterations, data: Diagonal())
        var rng = SplitMix64(seed: 21)
        var data = Diagonal()
        let test = data.nextBatch(size: 256, rng: &rng)
        let keepFirst = Tensor(shape: [2], storage: [1, 0])
        func error(_ filled: Tensor) -> Double {
            (0..<256).map { i in Double(filled.storage[2 * i + 1] - test.storage[2 * i + 1]) }.map { $0 * $0 }.reduce(0, +) / 256
        }
        let meanFill = error(Tensor(zeros: [256, 2]))          // the training mean of the second coordinate is 0
        let (oneStep, manySteps) = try trainer.withEMAWeights {
            let trained = TrainedModel(config: config, network: trainer.network, weights: .ema, step: config.iterations, context: SamplingContext())
            func inpaint(_ steps: Int) throws -> Double {
                error(try trained.edit(test, task: .inpaint(mask: keepFirst), plan: SamplingPlan(kind: .consistency, steps: steps), seed: 5))
            }
            return (try inpaint(1), try inpaint(16))
        }
        print("inpainting MSE on the unknown coordinate: 16 steps \(manySteps), 1 step \(oneStep), training-mean fill \(meanFill)")
        XCTAssertLessThan(manySteps, 0.5 * meanFill, "16 steps \(manySteps) vs mean fill \(meanFill)")
        XCTAssertLessThan(manySteps, 0.5 * oneStep, "16 steps \(manySteps) vs 1 step \(oneStep)")
    }
}
