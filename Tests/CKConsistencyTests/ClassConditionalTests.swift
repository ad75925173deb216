// Class-conditional training: labels reach every method's network, a share is dropped to "no class",
// the classes travel in the checkpoint, and a briefly trained model draws the class it is asked for.
import XCTest
import Foundation
import CKTensor
import CKNN
@testable import CKConsistency
import CKDatasets
import CKTraining
import CKTestSupport

final class ClassConditionalTests: XCTestCase {
    func testConfigStoresClassesAndUnconditionalConfigsAreUnchanged() throws {
        var plain = TrainingConfig(method: .ict)
        XCTAssertFalse(try plain.json().contains("classNames"), "unconditional runs write what they wrote before")
        plain.classNames = ["a", "b"]
        plain.labelDropout = 0.2
        let back = try JSONDecoder().decode(TrainingConfig.self, from: Data(try plain.json().utf8))
        XCTAssertEqual(back.classNames, ["a", "b"])
        XCTAssertEqual(back.labelDropout, 0.2)
        XCTAssertEqual(back.makeNetwork().classCount, 2)
        for (names, dropout) in [(["a", "a"], Float(0.1)), ([], 0.1), (["a", ""], 0.1), (["a", "b"], 1), (["a", "b"], -0.1)] {
            var bad = plain
            bad.classNames = names
            bad.labelDropout = dropout
            XCTAssertThrowsError(try bad.validate(), "\(names) \(dropout)")
        }
    }

    func testAboutOneLabelInTenIsDroppedAndTheOthersKept() throws {
        let trainer = try Trainer(config: classToyConfig(.ict, iterations: 10))
        let labels = (0..<4000).map { $0 % 2 }
        let bound = try trainer.conditioned(on: labels, batchSize: 4000, shard: .whole(4000), rng: SplitMix64(seed: 8))
        guard case .rows(let kept)? = (bound as? LabelledNetwork)?.labels else { return XCTFail("not bound to rows") }
        let dropped = kept.filter { $0 == 2 }.count
        // Binomial(4000, 0.1): mean 400, sd 19.
        XCTAssertEqual(Double(dropped), 400, accuracy: 80)
        XCTAssertTrue(zip(kept, labels).allSatisfy { $0 == 2 || $0 == $1 }, "a kept label is the sample's own")
        XCTAssertThrowsError(try trainer.trainStep(batch: Tensor(zeros: [4, 2]), rng: &Self.rng)) {
            XCTAssertEqual($0 as? TrainingError, .missingLabels(classCount: 2))
        }
        let plain = try Trainer(config: TrainingConfig(method: .ict))
        XCTAssertThrowsError(try plain.trainStep(batch: Tensor(zeros: [4, 2]), labels: [0, 1, 0, 1], rng: &Self.rng)) {
            XCTAssertEqual($0 as? TrainingError, .labelsForUnconditionalRun)
        }
    }
    private static var rng = SplitMix64(seed: 1)

    /// iCT, EDM, ECT and CTM (from the EDM model) and latent CT train with labels, keep their classes in the
    /// checkpoint, and sample a class that differs from the other.
    func testEveryMethodTrainsAndSamplesClasses() throws {
        let data = twoBlobs()
        let edm = try Trainer(config: classToyConfig(.edm, iterations: 30))
        try train(edm, until: 30, data: data)
        var runs: [(MethodName, Trainer)] = [(.edm, edm)]
        for method in [MethodName.ict, .ect, .ctm] {
            let inputs = method.type.inputs.isEmpty ? MethodInputs() : MethodInputs(diffusionModel: edm.trainedModel())
            let trainer = try Trainer(config: classToyConfig(method, iterations: 3), inputs: inputs)
            try train(trainer, until: 3, data: data)
            runs.append((method, trainer))
        }
        for (method, trainer) in runs {
            let run = try temporaryRun("classes-\(method)")
            try FileManager.default.createDirectory(at: run.url, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: run.url) }
            try trainer.checkpoint().write(to: run.checkpoint)
            let model = try loadTrainedModel(from: run.checkpoint)
            XCTAssertEqual(model.classNames, ["left", "right"], "\(method)")
            let plan = SamplingPlan(kind: method.type.defaultSampler, steps: method == .edm ? 4 : 1)
            let left = try model.sample(plan, count: 8, seed: 1, class: ClassRequest(label: 0))
            let right = try model.sample(plan, count: 8, seed: 1, class: ClassRequest(label: 1))
            XCTAssertNotEqual(left.storage, right.storage, "\(method): the class must change the samples")
            // Equal up to the last bits: GEMM sums in another order for another batch size.
            let mixed = try model.sample(plan, labels: [1, 0, 1, 0], seed: 1)
            assertClose(Array(mixed.storage[0..<2]), Array(right.storage[0..<2]), atol: 1e-5, "\(method): row 0 is right's sample 0")
            assertClose(Array(mixed.storage[2..<4]), Array(left.storage[0..<2]), atol: 1e-5, "\(method): row 1 is left's sample 0")
            assertClose(Array(mixed.storage[4..<6]), Array(right.storage[2..<4]), atol: 1e-5, "\(method): row 2 is right's sample 1")
            let restored = try Trainer.restore(from: try Checkpoint.read(from: run.checkpoint), path: run.checkpoint.path)
            XCTAssertEqual(restored.network.parameters.last!.value.storage, trainer.network.parameters.last!.value.storage)
        }
        // The start or teacher must have the run's classes.
        var plain = classToyConfig(.ect, iterations: 3)
        plain.classNames = nil
        XCTAssertThrowsError(try Trainer(config: plain, inputs: MethodInputs(diffusionModel: edm.trainedModel()))) {
            XCTAssertTrue("\($0)".contains("classes left, right"), "\($0)")
        }
        XCTAssertThrowsError(try runs[1].1.trainedModel().sample(SamplingPlan(kind: .consistency, steps: 1), count: 2, seed: 0,
                                                                 class: ClassRequest(label: 0, guidance: 2))) {
            XCTAssertEqual($0 as? ClassError, .guidanceNeedsHeun(sampler: "consistency"))
        }

        // Latent CT: labelled latents of an (untrained) autoencoder.
        let (images, labels) = Shapes.labelledBatch(count: 64, seed: 2)
        var aeConfig = AutoencoderTrainingConfig()
        aeConfig.width = 8
        aeConfig.iterations = 0
        let space = try trainAutoencoder(images: images, config: aeConfig)
        var lct = TrainingConfig(method: .lct)
        lct.model = .latentNet
        lct.data = "shapes"
        lct.sampleShape = space.autoencoder.latentShape
        lct.iterations = 2
        lct.batchSize = 16
        lct.classNames = Shapes.classNames
        let latentRun = try Trainer(config: lct, inputs: MethodInputs(autoencoder: space))
        try train(latentRun, until: 2, data: TensorDataset(try space.encode(images), labels: labels, classNames: Shapes.classNames))
        XCTAssertNotEqual(latentRun.network.parameters.last!.value.storage, lct.makeNetwork().parameters.last!.value.storage,
                          "the class table learned from the labels")
    }

    /// Asked for "right", a briefly trained toy model puts its samples right of zero far more often than chance.
    func testToyModelDrawsTheAskedForClass() throws {
        let trainer = try Trainer(config: classToyConfig(.edm, iterations: 600))
        try train(trainer, until: 600, data: twoBlobs())
        let model = trainer.trainedModel()
        let plan = SamplingPlan(kind: .heun, steps: 8)
        for (label, sign) in [(0, Float(-1)), (1, 1)] {
            let samples = try model.sample(plan, count: 200, seed: 4, class: ClassRequest(label: label))
            let right = (0..<200).filter { samples.storage[2 * $0] * sign > 0 }.count
            XCTAssertGreaterThan(right, 180, "class \(label): \(right) of 200 samples on its side")
        }
        // Unconditional samples (no class) fall on both sides.
        let free = try model.sample(plan, count: 200, seed: 4)
        let rightOfZero = (0..<200).filter { free.storage[2 * $0] > 0 }.count
        XCTAssertTrue((40...160).contains(rightOfZero), "unconditional: \(rightOfZero) of 200 right of zero")
    }

    /// Guided tuning distills the EDM model's guided sampler: on blobs that overlap (a true point is on its
    /// class's side 73% of the time), one-step samples of the asked-for class land on its side more often
    /// after guided tuning than after plain ECT from the same EDM model.
    func testGuidedTuningMakesOneStepSamplesMoreTypicalOfTheClass() throws {
        let data = twoBlobs(count: 2048, centre: 0.3, spread: 0.5)
        let edm = try Trainer(config: classToyConfig(.edm, iterations: 800))
        try train(edm, until: 800, data: data)
        func onTheirSide(guidance: Double) throws -> Int {
            var config = classToyConfig(.ect, iterations: 300)
            config.emaDecay = 0.95
            var options = ECTConfig()
            options.q = 16
            options.stages = 2
            options.guidance = guidance
            config.options = options
            let ect = try Trainer(config: config, inputs: MethodInputs(diffusionModel: edm.trainedModel()))
            try train(ect, until: 300, data: data)
            let model = ect.trainedModel()
            return try [(0, Float(-1)), (1, 1)].map { label, sign in
                let samples = try model.sample(SamplingPlan(kind: .consistency, steps: 1), count: 500, seed: 4,
                                               class: ClassRequest(label: label))
                return (0..<500).filter { samples.storage[2 * $0] * sign > 0 }.count
            }.reduce(0, +)
        }
        let plain = try onTheirSide(guidance: 1), guided = try onTheirSide(guidance: 3)
        XCTAssertGreaterThan(guided, plain + 80, "of 1,000 one-step samples on their class's side: plain \(plain), guided \(guided)")
    }

    /// A guided run keeps its teacher in the checkpoint (it resumes without the --init file); guidance needs classes.
    func testGuidedTuningKeepsItsTeacherAndNeedsClasses() throws {
        let edm = try Trainer(config: classToyConfig(.edm, iterations: 20))
        try train(edm, until: 20, data: twoBlobs())
        var config = classToyConfig(.ect, iterations: 4)
        var options = ECTConfig()
        options.guidance = 2
        config.options = options
        let ect = try Trainer(config: config, inputs: MethodInputs(diffusionModel: edm.trainedModel()))
        try train(ect, until: 2, data: twoBlobs())
        let checkpoint = try ect.checkpoint()
        let edmWeights = edm.trainedModel().network.parameters
        for p in edmWeights {
            XCTAssertEqual(checkpoint.tensor(named: "teacher." + p.name)?.storage, p.value.storage, "teacher.\(p.name)")
        }
        let restored = try Trainer.restore(from: checkpoint, path: "guided")
        let teacher = try XCTUnwrap((restored.method as? ECT)?.teacher, "the resumed run has its teacher")
        XCTAssertEqual(teacher.parameters.map(\.value.storage), edmWeights.map(\.value.storage))
        XCTAssertFalse(teacher.parameters.contains { $0.value.requiresGradient }, "the teacher does not train")
        // Plain ECT writes no teacher, as before.
        let plain = try Trainer(config: classToyConfig(.ect, iterations: 4), inputs: MethodInputs(diffusionModel: edm.trainedModel()))
        XCTAssertFalse(try plain.checkpoint().tensors.contains { $0.name.hasPrefix("teacher.") })

        var unconditional = config
        unconditional.classNames = nil
        var plainEDM = edm.config
        plainEDM.classNames = nil
        let start = try Trainer(config: plainEDM)
        XCTAssertThrowsError(try Trainer(config: unconditional, inputs: MethodInputs(diffusionModel: start.trainedModel()))) {
            XCTAssertTrue("\($0)".contains("--classes"), "\($0)")
        }
        // Distilling the unguided ODE needs no classes.
        var distilling = unconditional
        var distill = ECTConfig()
        distill.distill = true
        distilling.options = distill
        let student = try Trainer(config: distilling, inputs: MethodInputs(diffusionModel: start.trainedModel()))
        XCTAssertNotNil((student.method as? ECT)?.teacher)
    }

    /// The check on images: EDM on `shapes` labelled by style, briefly trained, draws the asked-for style
    /// more often than chance (25%), judged by a nearest-centroid classifier on mean colour fitted to true images.
    func testShapesModelDrawsTheAskedForStyle() throws {
        var config = TrainingConfig(method: .edm)
        config.model = .unetXS
        config.data = "shapes"
        config.sampleShape = Shapes.sampleShape
        config.iterations = 150
        config.batchSize = 16
        config.learningRate = 1e-3
        config.seed = 1
        config.classNames = Shapes.classNames
        let trainer = try Trainer(config: config)
        try train(trainer, until: config.iterations)
        let (images, labels) = Shapes.labelledBatch(count: 400, seed: 77)
        func meanColour(_ batch: Tensor, _ i: Int) -> [Float] {
            let plane = 32 * 32
            return (0..<3).map { c in batch.storage[(i * 3 + c) * plane..<(i * 3 + c + 1) * plane].reduce(0, +) / Float(plane) }
        }
        var centroids = [[Float]](repeating: [0, 0, 0], count: 4), counts = [Float](repeating: 0, count: 4)
        for i in 0..<400 {
            centroids[labels[i]] = zip(centroids[labels[i]], meanColour(images, i)).map(+)
            counts[labels[i]] += 1
        }
        centroids = centroids.indices.map { k in centroids[k].map { $0 / counts[k] } }
        func nearest(_ colour: [Float]) -> Int {
            centroids.indices.min { a, b in
                zip(centroids[a], colour).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                    < zip(centroids[b], colour).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
            }!
        }
        // The classifier itself must work on true images for its verdict to mean anything.
        let trueAccuracy = Double((0..<400).filter { nearest(meanColour(images, $0)) == labels[$0] }.count) / 400
        XCTAssertGreaterThan(trueAccuracy, 0.9)
        let model = trainer.trainedModel()
        let asked = (0..<64).map { $0 % 4 }
        let samples = try model.sample(SamplingPlan(kind: .heun, steps: 8), labels: asked, seed: 5)
        let hits = asked.indices.filter { nearest(meanColour(samples, $0)) == asked[$0] }.count
        // Measured: 52 of 64 after these 150 iterations.
        XCTAssertGreaterThan(hits, 32, "\(hits) of 64 samples in the asked-for style (chance: 16)")
    }
}
