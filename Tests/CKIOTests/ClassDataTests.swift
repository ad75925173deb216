// Labelled data for class-conditional training: shapes' styles, class subfolders, labelled batches
// that match their images, references of one class.
import CKDatasets
import CKImageIO
import CKTensor
import Foundation
import XCTest

final class ClassDataTests: XCTestCase {
    func testShapesLabelsAreTheStylesTheImagesWereDrawnIn() {
        let (images, labels) = Shapes.labelledBatch(count: 40, seed: 9)
        XCTAssertEqual(images.storage, Shapes.batch(count: 40, seed: 9).storage, "labelling must not change the images")
        let base = SplitMix64(seed: 9)
        for k in 0..<40 {
            var rng = base.split(UInt64(k))
            XCTAssertEqual(labels[k], Shapes.image(rng: &rng).style.rawValue, "image \(k)")
        }
        XCTAssertEqual(Set(labels), [0, 1, 2, 3], "40 images should show every style")
        XCTAssertEqual(Shapes.classNames, ["sunset", "ocean", "forest", "paper"])
        var a = ShapesDataset(), b = ShapesDataset()
        var r1 = SplitMix64(seed: 2), r2 = SplitMix64(seed: 2)
        XCTAssertEqual(a.nextLabelledBatch(size: 8, rng: &r1).batch.storage, b.nextBatch(size: 8, rng: &r2).storage)
    }

    /// Each image's value says which sample it is; the labels of a step's batch must be those samples'.
    func testLabelledBatchesCarryTheirImagesLabels() throws {
        let n = 50
        let data = Tensor(shape: [n, 1, 2, 2], storage: (0..<n).flatMap { Array(repeating: Float($0), count: 4) })
        let labels = (0..<n).map { ($0 * 7) % 3 }
        var batcher = try StepBatcher(dataset: TensorDataset(data, labels: labels, classNames: ["a", "b", "c"]), batchSize: 8, seed: 4)
        for k in [0, 1, 5, 6, 13] {
            let (batch, got) = batcher.labelledBatch(forStep: k)
            let indices = (0..<8).map { Int(batch.storage[4 * $0]) }
            XCTAssertEqual(got, indices.map { labels[$0] }, "step \(k)")
            XCTAssertEqual(batch.storage, batcher.batch(forStep: k).storage)
        }
        var unlabelled = try StepBatcher(dataset: TensorDataset(data, labels: labels), batchSize: 8, seed: 4)
        XCTAssertNil(unlabelled.labelledBatch(forStep: 0).labels, "labels without class names do not make a labelled set")
    }

    private func writeImage(_ value: Float, side: Int = 4, to path: String) throws {
        try ImageGrid.write(Tensor(repeating: value, shape: [1, 1, side, side]), to: path, columns: 1, padding: 0)
    }

    /// A folder of class subfolders: each subfolder a class in name order; values tell the classes apart.
    private func classFolder(_ classes: [(String, Float, Int)]) throws -> String {
        let root = try scratchDirectory(self)
        for (name, value, count) in classes {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            for i in 0..<count { try writeImage(value, to: "\(root)/\(name)/\(i).png") }
        }
        return root
    }

    func testClassFoldersAreClassesInNameOrder() throws {
        let root = try classFolder([("sneakers", 0.6, 3), ("boots", -0.6, 2)])
        let (images, labels, names) = try ImageFolder.loadClasses(root)
        XCTAssertEqual(names, ["boots", "sneakers"])
        XCTAssertEqual(labels, [0, 0, 1, 1, 1])
        for (i, label) in labels.enumerated() {
            XCTAssertEqual(images.storage[16 * i], label == 0 ? -0.6 : 0.6, accuracy: 0.01, "image \(i)")
        }
        let data = try DataSpec(parsing: "folder:\(root)").open(classes: true)
        XCTAssertEqual(data.classNames, ["boots", "sneakers"])
        let reference = try DataSpec(parsing: "folder:\(root)").referenceSamples(count: 3, seed: 1, label: 1)
        XCTAssertEqual(reference.shape[0], 3)
        XCTAssertTrue(reference.storage.allSatisfy { abs($0 - 0.6) < 0.01 }, "a class's reference holds only that class")
    }

    func testClassFolderMistakesAreExplained() throws {
        let one = try classFolder([("only", 0, 2)])
        XCTAssertThrowsError(try ImageFolder.loadClasses(one)) { XCTAssertTrue("\($0)".contains("at least two"), "\($0)") }

        let loose = try classFolder([("a", 0, 1), ("b", 0.5, 1)])
        try writeImage(0, to: "\(loose)/stray.png")
        XCTAssertThrowsError(try ImageFolder.loadClasses(loose)) { XCTAssertTrue("\($0)".contains("stray.png"), "\($0)") }

        let sizes = try classFolder([("a", 0, 1)])
        try FileManager.default.createDirectory(atPath: "\(sizes)/b", withIntermediateDirectories: true)
        try writeImage(0, side: 8, to: "\(sizes)/b/0.png")
        XCTAssertThrowsError(try ImageFolder.loadClasses(sizes)) { XCTAssertTrue("\($0)".contains("same size"), "\($0)") }

        XCTAssertThrowsError(try DataSpec(parsing: "toy:checkerboard").open(classes: true)) {
            XCTAssertTrue("\($0)".contains("no class labels"), "\($0)")
        }
    }
}
