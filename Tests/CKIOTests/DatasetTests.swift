// Toy sets against the peer README's definitions, Fashion-MNIST IDX, image folders, shuffling, shapes.
import CKDatasets
import CKImageIO
import CKTensor
import CKTestSupport
import Foundation
import XCTest

final class DatasetTests: XCTestCase {
    // MARK: - Toy 2-D

    /// (mean, std) of each coordinate, float64.
    private func moments(_ t: Tensor) -> [(mean: Double, std: Double)] {
        let n = t.shape[0]
        return (0..<2).map { j in
            var s = 0.0, s2 = 0.0
            for i in 0..<n { let v = Double(t.storage[2 * i + j]); s += v; s2 += v * v }
            let m = s / Double(n)
            return (m, (s2 / Double(n) - m * m).squareRoot())
        }
    }

    func testCheckerboardAndGaussiansAreCentredWithStdHalf() {
        // README: mean 0, std exactly 0.5 per coordinate. On 100k points the standard error of the mean is
        // 0.5 / sqrt(1e5) = 0.0016 and of the std about 0.5 / sqrt(2e5) = 0.0011 (less for the uniform board).
        for (k, dist) in [Toy2D.checkerboard, .eightGaussians].enumerated() {
            var rng = SplitMix64(seed: 10 + UInt64(k))
            for (j, m) in moments(dist.sample(count: 100_000, rng: &rng)).enumerated() {
                XCTAssertEqual(m.mean, 0, accuracy: 0.008, "\(dist) coordinate \(j) mean")
                XCTAssertEqual(m.std, 0.5, accuracy: 0.006, "\(dist) coordinate \(j) std")
            }
        }
        // Swissroll: RMS of the two stds is 0.5; the stds are about 0.488 and 0.512.
        var rng = SplitMix64(seed: 12)
        let m = moments(Toy2D.swissroll.sample(count: 100_000, rng: &rng))
        XCTAssertEqual(((m[0].std * m[0].std + m[1].std * m[1].std) / 2).squareRoot(), 0.5, accuracy: 0.006)
        XCTAssertEqual(m[0].std, 0.488, accuracy: 0.01)
        XCTAssertEqual(m[1].std, 0.512, accuracy: 0.01)
        XCTAssertEqual(m[0].mean, 0, accuracy: 0.01)
        XCTAssertEqual(m[1].mean, 0, accuracy: 0.01)
    }

    func testCheckerboardFillsOnlyEvenCellsEqually() {
        var rng = SplitMix64(seed: 5)
        let n = 80_000
        let x = Toy2D.checkerboard.sample(count: n, rng: &rng)
        let scale = 3.0.squareRoot() / 4                                  // README: sqrt(3)/4 = 0.4330127
        var counts = [Int](repeating: 0, count: 16)
        for i in 0..<n {
            // Undo the scale: cell (c, r) covers [-2+c, -1+c) x [-2+r, -1+r).
            let u = Double(x.storage[2 * i]) / scale + 2, v = Double(x.storage[2 * i + 1]) / scale + 2
            let c = Int(u.rounded(.down)), r = Int(v.rounded(.down))
            XCTAssertTrue((0..<4).contains(c) && (0..<4).contains(r), "point (\(u - 2), \(v - 2)) is off the board")
            guard (0..<4).contains(c) && (0..<4).contains(r) else { return }
            counts[r * 4 + c] += 1
        }
        for c in 0..<4 {
            for r in 0..<4 {
                if (c + r) % 2 == 1 {
                    XCTAssertEqual(counts[r * 4 + c], 0, "cell (\(c), \(r)) must be empty")
                } else {       // 1/8 each: 10000 expected, binomial std ~ 94
                    XCTAssertEqual(Double(counts[r * 4 + c]), Double(n) / 8, accuracy: 500, "cell (\(c), \(r))")
                }
            }
        }
        XCTAssertGreaterThan(counts[0], 0, "the corner cell at (-2, -2) is filled")
    }

    func testEightGaussiansModes() {
        var rng = SplitMix64(seed: 6)
        let x = Toy2D.eightGaussians.sample(count: 40_000, rng: &rng)
        // README: modes at radius 0.70014 (first on the +x axis) with std 0.070014.
        var perMode = [Int](repeating: 0, count: 8), spread = 0.0
        for i in 0..<x.shape[0] {
            let px = Double(x.storage[2 * i]), py = Double(x.storage[2 * i + 1])
            let k = (0..<8).min { a, b in
                func d(_ m: Int) -> Double {
                    let a = 2 * Double.pi * Double(m) / 8
                    return pow(px - 0.70014 * cos(a), 2) + pow(py - 0.70014 * sin(a), 2)
                }
                return d(a) < d(b)
            }!
            perMode[k] += 1
            let a = 2 * Double.pi * Double(k) / 8
            spread += pow(px - 0.70014 * cos(a), 2) + pow(py - 0.70014 * sin(a), 2)
        }
        for c in perMode { XCTAssertEqual(Double(c), 5000, accuracy: 300) }
        // E|noise|^2 = 2 * 0.070014^2 in 2-D.
        XCTAssertEqual((spread / Double(x.shape[0]) / 2).squareRoot(), 0.070014, accuracy: 0.001)
    }

    func testToySetsAreDeterministic() {
        for dist in Toy2D.allCases {
            var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42), c = SplitMix64(seed: 43)
            let x = dist.sample(count: 500, rng: &a)
            XCTAssertEqual(x.storage, dist.sample(count: 500, rng: &b).storage, "\(dist): same seed, same points")
            XCTAssertNotEqual(x.storage, dist.sample(count: 500, rng: &c).storage, "\(dist): another seed")
            XCTAssertEqual(x.shape, [500, 2])
        }
        XCTAssertEqual(Toy2D(rawValue: "8gaussians"), .eightGaussians)
        var data = ToyDataset(.swissroll)
        var rng = SplitMix64(seed: 1)
        XCTAssertEqual(data.nextBatch(size: 7, rng: &rng).shape, [7, 2])
        XCTAssertEqual(data.sampleShape, [2])
        XCTAssertNil(data.count)
    }

    // MARK: - Fashion-MNIST

    func testFashionMNISTTrainSplit() throws {
        guard FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory) else {
            throw XCTSkip("\(FashionMNIST.defaultDirectory) missing: apt-get install dataset-fashion-mnist")
        }
        let (images, labels) = try FashionMNIST.load(.train)
        XCTAssertEqual(images.shape, [60000, 1, 28, 28])
        XCTAssertEqual(labels.count, 60000)
        let (lo, hi) = images.storage.withUnsafeBufferPointer { v in
            var lo = v[0], hi = v[0]
            for x in v { lo = Swift.min(lo, x); hi = Swift.max(hi, x) }
            return (lo, hi)
        }
        XCTAssertEqual(lo, -1)
        XCTAssertEqual(hi, 1)
        // Values are byte / 127.5 - 1: every value maps back to an integer byte.
        for v in images.storage.prefix(5000) {
            let b = (v + 1) * 127.5
            XCTAssertEqual(b, b.rounded(), accuracy: 1e-3)
        }
        // The training split is balanced: 6000 per class.
        XCTAssertEqual((0..<10).map { c in labels.filter { $0 == c }.count }, [Int](repeating: 6000, count: 10))
        // A real garment: the mean image is darker at the corners than in the centre.
        let first = images.slice(0..<1000).storage
        var corner = 0.0, centre = 0.0
        for k in 0..<1000 { corner += Double(first[k * 784]); centre += Double(first[k * 784 + 14 * 28 + 14]) }
        XCTAssertLessThan(corner, centre)
    }

    func testFashionMNISTTestSplitAndGrid() throws {
        guard FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory) else {
            throw XCTSkip("\(FashionMNIST.defaultDirectory) missing: apt-get install dataset-fashion-mnist")
        }
        var data = try FashionMNIST.dataset(.test)
        XCTAssertEqual(data.count, 10000)
        XCTAssertEqual(data.sampleShape, [1, 28, 28])
        var rng = SplitMix64(seed: 0)
        let batch = data.nextBatch(size: 64, rng: &rng)
        try ImageGrid.write(batch, to: "\(try keptOutputDirectory(self))/fmnist_grid.png")
    }

    func testMissingFashionMNISTNamesThePackage() {
        XCTAssertThrowsError(try FashionMNIST.load(directory: "/nonexistent/fashion-mnist")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("dataset-fashion-mnist"), text)
            XCTAssertTrue(text.contains("apt-get install dataset-fashion-mnist"), text)
            XCTAssertTrue(text.contains("/nonexistent/fashion-mnist"), text)
        }
    }

    func testIDXReaderOnHandMadeFiles() throws {
        let dir = try scratchDirectory(self)
        // Header: 0 0 0x08 ndim=2, dims 2 x 3 big-endian, then 6 bytes.
        let bytes: [UInt8] = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255]
        try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/plain-idx2"))
        let (dims, values) = try IDX.read("\(dir)/plain-idx2")
        XCTAssertEqual(dims, [2, 3])
        XCTAssertEqual(values, [1, 2, 3, 4, 5, 255])
        try Data(bytes.dropLast()).write(to: URL(fileURLWithPath: "\(dir)/short"))
        XCTAssertThrowsError(try IDX.read("\(dir)/short")) { XCTAssertTrue("\($0)".contains("short"), "\($0)") }
        // A gzip header followed by garbage: a zlib error, not a crash.
        try Data([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3] + [UInt8](repeating: 0xAB, count: 64))
            .write(to: URL(fileURLWithPath: "\(dir)/bad.gz"))
        XCTAssertThrowsError(try IDX.read("\(dir)/bad.gz")) { XCTAssertTrue("\($0)".contains("bad.gz"), "\($0)") }
    }

    // MARK: - Image folder

    func testImageFolderLoadsAndRejectsOddSizes() throws {
        let dir = try scratchDirectory(self)
        for (k, name) in ["a.png", "c.png", "b.png"].enumerated() {
            try PNG.write(Bitmap(width: 8, height: 6, channels: 1, fill: UInt8(40 * k)), to: "\(dir)/\(name)")
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(dir)/notes.txt"))
        let (images, files) = try ImageFolder.load(dir)
        XCTAssertEqual(files, ["a.png", "b.png", "c.png"])
        XCTAssertEqual(images.shape, [3, 1, 6, 8])
        XCTAssertEqual(images.storage[48], Float(80) / 127.5 - 1, accuracy: 1e-6, "b.png (fill 80) is second")

        try PNG.write(Bitmap(width: 9, height: 6, channels: 1), to: "\(dir)/odd.png")
        XCTAssertThrowsError(try ImageFolder.load(dir)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("odd.png") && text.contains("9x6") && text.contains("8x6"), text)
        }
        try FileManager.default.removeItem(atPath: "\(dir)/odd.png")
        try PNG.write(Bitmap(width: 8, height: 6, channels: 3), to: "\(dir)/rgb.png")
        XCTAssertThrowsError(try ImageFolder.load(dir)) { error in
            XCTAssertTrue("\(error)".contains("rgb.png") && "\(error)".contains("3 channels"), "\(error)")
        }
        XCTAssertThrowsError(try ImageFolder.load("\(dir)/nope")) { XCTAssertTrue("\($0)".contains("nope"), "\($0)") }
    }

    // MARK: - Shuffled finite sets

    func testEpochsVisitEverySampleOnce() {
        let n = 10
        var data = TensorDataset(Tensor(shape: [n, 1], storage: (0..<n).map(Float.init)))
        var rng = SplitMix64(seed: 9)
        var firstEpoch: [Float] = []
        for _ in 0..<3 { firstEpoch += data.nextBatch(size: 3, rng: &rng).storage }   // 9 of 10, one left over
        XCTAssertEqual(Set(firstEpoch).count, 9, "no repeats inside an epoch")
        XCTAssertEqual(data.epoch, 0)
        var second: [Float] = []
        for _ in 0..<3 { second += data.nextBatch(size: 3, rng: &rng).storage }
        XCTAssertEqual(data.epoch, 1, "the leftover sample is dropped and a new permutation starts")
        XCTAssertEqual(Set(second).count, 9)
        XCTAssertNotEqual(firstEpoch, second, "a fresh permutation each epoch")
        let (batch, idx) = data.nextIndexedBatch(size: 10, rng: &rng)
        XCTAssertEqual(batch.storage, idx.map(Float.init))
        XCTAssertEqual(Set(idx).count, 10)
    }

    // MARK: - Procedural shapes

    func testShapesAreDeterministicPerIndexAndInRange() {
        let a = Shapes.batch(count: 5, seed: 77), b = Shapes.batch(count: 3, seed: 77)
        XCTAssertEqual(a.shape, [5, 3, 32, 32])
        XCTAssertEqual(Array(a.storage.prefix(b.count)), b.storage, "image k depends only on (seed, k)")
        XCTAssertNotEqual(Shapes.batch(count: 3, seed: 78).storage, b.storage)
        XCTAssertTrue(a.storage.allSatisfy { $0 >= -1 && $0 <= 1 })
        var data = ShapesDataset()
        var rng = SplitMix64(seed: 2)
        XCTAssertEqual(data.nextBatch(size: 4, rng: &rng).shape, [4, 3, 32, 32])
    }

    func testShapesHaveStructureAndDistinctStyles() throws {
        // Per style: the mean colour differs between styles, and every image has a visible shape
        // (pixel values spread, not a flat field).
        var rng = SplitMix64(seed: 3)
        var meanColour = [[Double]](repeating: [0, 0, 0], count: 4), seen = [Int](repeating: 0, count: 4)
        var kinds = Set<Int>()
        for _ in 0..<400 {
            let (image, kind, style) = Shapes.image(rng: &rng)
            kinds.insert(kind.rawValue)
            seen[style.rawValue] += 1
            for c in 0..<3 {
                meanColour[style.rawValue][c] += image.storage[(c * 1024)..<((c + 1) * 1024)].reduce(0) { $0 + Double($1) } / 1024
            }
            let v = image.storage
            let mean = v.reduce(0, +) / Float(v.count)
            let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(v.count)).squareRoot()
            XCTAssertGreaterThan(std, 0.1, "\(kind) \(style): no visible structure")
        }
        XCTAssertEqual(kinds.count, 4)
        for s in 0..<4 { XCTAssertGreaterThan(seen[s], 60) }
        for s in 0..<4 { for c in 0..<3 { meanColour[s][c] /= Double(seen[s]) } }
        for s in 0..<4 {
            for t in (s + 1)..<4 {
                let d = zip(meanColour[s], meanColour[t]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                XCTAssertGreaterThan(d, 0.2, "styles \(s) and \(t) look alike")
            }
        }
        try ImageGrid.write(Shapes.batch(count: 64, seed: 1), to: "\(try keptOutputDirectory(self))/shapes_grid.png")
    }
}
