// The metric classifier: architecture, training, features and the Fréchet score, checkpoints, the shipped asset.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKEvaluation
import CKDatasets
import CKTestSupport

final class ClassifierTests: XCTestCase {
    // MARK: - Architecture

    func testParameterNamesCountsAndShapes() {
        var rng = SplitMix64(seed: 0)
        let gray = Classifier(channels: 1, imageSize: 28, classes: 10, rng: &rng)
        XCTAssertEqual(gray.parameters.map(\.name), [
            "conv1.weight", "conv1.bias", "gn1.weight", "gn1.bias", "conv2.weight", "conv2.bias", "gn2.weight", "gn2.bias",
            "conv3.weight", "conv3.bias", "gn3.weight", "gn3.bias", "fc.weight", "fc.bias", "head.weight", "head.bias"])
        // conv1 1*32*9+32, gn1 64, conv2 32*64*9+64, gn2 128, conv3 64*64*9+64, gn3 128, fc (64*7*7)*64+64, head 64*10+10
        XCTAssertEqual(gray.parameterCount, 320 + 64 + 18_496 + 128 + 36_928 + 128 + 200_768 + 650)
        let x = Tensor.normal(shape: [3, 1, 28, 28], rng: &rng)
        XCTAssertEqual(gray.features(x).shape, [3, 64])
        XCTAssertEqual(gray.logits(x).shape, [3, 10])

        let rgb = Classifier(channels: 3, imageSize: 32, classes: 16, rng: &rng)
        // conv1 3*32*9+32, fc (64*8*8)*64+64, head 64*16+16; the rest as above
        XCTAssertEqual(rgb.parameterCount, 896 + 64 + 18_496 + 128 + 36_928 + 128 + 262_208 + 1_040)
        XCTAssertEqual(rgb.logits(Tensor.normal(shape: [2, 3, 32, 32], rng: &rng)).shape, [2, 16])
    }

    func testGradientThroughTheNetwork() {
        var rng = SplitMix64(seed: 3)
        let c = Classifier(channels: 1, imageSize: 8, classes: 3, rng: &rng)
        gradCheck(shapes: [[2, 1, 8, 8]]) { c.logits($0[0]).crossEntropy(labels: [2, 0]) }
    }

    // MARK: - Training

    /// Images whose class is which quadrant is bright: learnable in a few dozen steps, no dataset needed.
    private func quadrantImages(count: Int, seed: UInt64) -> (images: Tensor, labels: [Int]) {
        var rng = SplitMix64(seed: seed)
        var images = Tensor.normal(shape: [count, 1, 8, 8], rng: &rng) * 0.3
        let labels = (0..<count).map { _ in Int.random(in: 0..<4, using: &rng) }
        for (n, label) in labels.enumerated() {
            for i in 0..<4 { for j in 0..<4 { images.storage[n * 64 + (i + 4 * (label / 2)) * 8 + j + 4 * (label % 2)] += 1 } }
        }
        return (images, labels)
    }

    func testTrainingIsDeterministicAndLearnsSyntheticClasses() throws {
        let train = quadrantImages(count: 512, seed: 1), test = quadrantImages(count: 256, seed: 2)
        let a = try trainClassifier(images: train.images, labels: train.labels, classes: 4, iterations: 60, batchSize: 32,
                                    learningRate: 3e-3, seed: 5, test: test)
        let b = try trainClassifier(images: train.images, labels: train.labels, classes: 4, iterations: 60, batchSize: 32,
                                    learningRate: 3e-3, seed: 5, test: test)
        XCTAssertEqual(a.classifier.parameters.map(\.value.storage), b.classifier.parameters.map(\.value.storage))
        let untrained = try trainClassifier(images: train.images, labels: train.labels, classes: 4, iterations: 0,
                                            batchSize: 32, seed: 5, test: test)
        XCTAssertLessThan(untrained.testAccuracy!, 0.5)
        XCTAssertGreaterThan(a.testAccuracy!, 0.95, "quadrant classes after 60 iterations")
    }

    func testShortFashionMNISTRunBeatsChance() throws {
        let train = try fashionMNIST(.train), test = try fashionMNIST(.test)
        let subset = (images: train.images.slice(0..<3000), labels: Array(train.labels[0..<3000]))
        let held = (images: test.images.slice(0..<500), labels: Array(test.labels[0..<500]))
        var losses: [Float] = []
        let result = try trainClassifier(images: subset.images, labels: subset.labels, classes: 10, iterations: 100,
                                         batchSize: 32, learningRate: 3e-3, seed: 1, test: held,
                                         progress: { losses.append($0.loss) })
        XCTAssertEqual(losses.count, 100)
        XCTAssertLessThan(result.finalLoss, 0.5 * losses[0], "loss \(losses[0]) -> \(result.finalLoss)")
        XCTAssertGreaterThan(result.testAccuracy!, 0.6, "10 classes: chance is 0.1")
    }

    // MARK: - Features and the score

    func testFIDOfASetWithItselfIsZeroAndNoiseIsFar() throws {
        let test = try fashionMNIST(.test)
        let classifier: Classifier
        if let url = defaultClassifierURL(for: "fashion-mnist") {
            classifier = try loadClassifier(from: url, sampleShape: [1, 28, 28])
        } else {
            let train = try fashionMNIST(.train)
            classifier = try trainClassifier(images: train.images.slice(0..<3000), labels: Array(train.labels[0..<3000]),
                                             classes: 10, iterations: 100, batchSize: 32, learningRate: 3e-3, seed: 1).classifier
        }
        let a = test.images.slice(0..<300), b = test.images.slice(300..<600)
        var rng = SplitMix64(seed: 9)
        let noise = Tensor.uniform(shape: [300, 1, 28, 28], low: -1, high: 1, rng: &rng)

        let features = classifierFeatures(classifier, images: a, batchSize: 128)
        XCTAssertEqual(features.shape, [300, 64])
        // Batching must not change the features: compare with one batch of the first 7 images.
        assertClose(Array(features.storage[0..<(7 * 64)]),
                    Tape.withoutRecording { classifier.features(a.slice(0..<7)) }.storage, atol: 1e-5, rtol: 1e-4)

        let same = fidScore(classifier, generated: a, reference: a)
        let real = fidScore(classifier, generated: b, reference: a)
        let far = fidScore(classifier, generated: noise, reference: a)
        // Measured with the shipped classifier: same 1.6e-11, real 17.4, far 529.
        XCTAssertGreaterThan(real, 0)
        XCTAssertLessThan(abs(same), 1e-4 * real, "FID of a set with itself")
        XCTAssertGreaterThan(far, 10 * real, "noise \(far) vs other real images \(real)")
    }

    // MARK: - Checkpoints

    func testCheckpointRoundTripAndMetadata() throws {
        var rng = SplitMix64(seed: 4)
        let c = Classifier(channels: 3, imageSize: 32, classes: 16, rng: &rng)
        let url = temporaryFile("shapes-classifier.safetensors")
        let checkpoint = classifierCheckpoint(c, dataset: "shapes", testAccuracy: 0.9123)
        XCTAssertEqual(checkpoint.metadata, ["kind": "classifier", "dataset": "shapes", "classes": "16",
                                             "sample_shape": "3,32,32", "test_accuracy": "0.9123"])
        try checkpoint.write(to: url)
        let loaded = try loadClassifier(from: url, sampleShape: [3, 32, 32])
        let x = Tensor.normal(shape: [2, 3, 32, 32], rng: &rng)
        XCTAssertEqual(loaded.classes, 16)
        XCTAssertEqual(loaded.logits(x).storage, c.logits(x).storage)

        XCTAssertThrowsError(try loadClassifier(from: url, sampleShape: [1, 28, 28])) { error in
            XCTAssertEqual(error as? ClassifierError,
                           .wrongSampleShape(path: url.relativePath, found: [3, 32, 32], expected: [1, 28, 28], dataset: "shapes"))
            XCTAssertTrue("\(error)".contains("trained on shapes images of shape 3x32x32"), "\(error)")
        }
    }

    func testLoadingAnotherCheckpointThrowsAClearError() throws {
        var rng = SplitMix64(seed: 0)
        var other = Checkpoint()
        other.append(MLPToy(rng: &rng).parameters)
        other.metadata["config"] = "{}"
        let url = temporaryFile("ict.safetensors")
        try other.write(to: url)
        XCTAssertThrowsError(try loadClassifier(from: url)) { error in
            XCTAssertEqual(error as? ClassifierError,
                           .notAClassifier(path: url.relativePath, found: "it is a consistency-model training checkpoint"))
            XCTAssertTrue("\(error)".contains("is not a classifier checkpoint"), "\(error)")
        }
        // Marked as a classifier but with a broken shape entry.
        var broken = classifierCheckpoint(Classifier(channels: 1, imageSize: 28, classes: 10, rng: &rng),
                                          dataset: "fashion-mnist", testAccuracy: nil)
        broken.metadata["sample_shape"] = "1,28"
        try broken.write(to: url)
        XCTAssertThrowsError(try loadClassifier(from: url)) { error in
            XCTAssertEqual(error as? ClassifierError, .badMetadata(path: url.relativePath, key: "sample_shape", value: "1,28"))
        }
    }

    // MARK: - The shipped classifier

    func testAssetSearchOrder() throws {
        let dir = temporaryFile("assets-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("fmnist-classifier.safetensors")
        let candidates = classifierAssetCandidates(for: "fashion-mnist", environment: ["CMKIT_ASSETS": dir.path],
                                                   currentDirectory: URL(fileURLWithPath: "/here"),
                                                   executable: URL(fileURLWithPath: "/repo/.build/release/cmkit"))
        XCTAssertEqual(candidates.map(\.path), [file.path, "/here/assets/fmnist-classifier.safetensors",
                                                "/repo/.build/release/assets/fmnist-classifier.safetensors",
                                                "/repo/.build/assets/fmnist-classifier.safetensors",
                                                "/repo/assets/fmnist-classifier.safetensors",
                                                "/assets/fmnist-classifier.safetensors"])
        XCTAssertEqual(classifierAssetName(for: "shapes"), "shapes-classifier.safetensors")
        XCTAssertNotEqual(defaultClassifierURL(for: "fashion-mnist", environment: ["CMKIT_ASSETS": dir.path])?.path, file.path)
        try Data("x".utf8).write(to: file)
        XCTAssertEqual(defaultClassifierURL(for: "fashion-mnist", environment: ["CMKIT_ASSETS": dir.path])?.path, file.path)
    }

    func testShippedClassifier() throws {
        guard let url = defaultClassifierURL(for: "fashion-mnist", environment: [:]) else {
            return XCTFail("assets/fmnist-classifier.safetensors not found from \(FileManager.default.currentDirectoryPath)")
        }
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? .max
        XCTAssertLessThan(size, 2_000_000)
        let checkpoint = try Checkpoint.read(from: url)
        XCTAssertEqual(checkpoint.metadata["dataset"], "fashion-mnist")
        XCTAssertGreaterThanOrEqual(Double(checkpoint.metadata["test_accuracy"] ?? "") ?? 0, 0.88)
        let classifier = try loadClassifier(from: url, sampleShape: [1, 28, 28])
        let test = try fashionMNIST(.test)
        let accuracy = classifierAccuracy(classifier, images: test.images.slice(0..<1000), labels: Array(test.labels[0..<1000]))
        XCTAssertGreaterThan(accuracy, 0.85, "shipped classifier on 1000 test images")
    }

    // MARK: - Helpers

    private func fashionMNIST(_ split: FashionMNIST.Split) throws -> (images: Tensor, labels: [Int]) {
        guard FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory) else {
            throw XCTSkip("Fashion-MNIST not installed at \(FashionMNIST.defaultDirectory) (apt-get install dataset-fashion-mnist)")
        }
        return try FashionMNIST.load(split)
    }

    private func temporaryFile(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("ck-classifier-\(getpid())-\(name)")
    }
}
