// `cmkit edit` as a user runs it (the built binary, in a temporary folder, on small untrained unet-xs checkpoints of
// 8x8 images): what each task keeps of its input in the written .npy, interpolation's ends against `cmkit sample`,
// and a clear error for every way the request can be wrong.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency
import CKImageIO

final class EditCLITests: CLITestCase {
    /// Runs the built cmkit on one thread in the temporary folder.
    private func cmkit(_ arguments: [String]) throws -> Outcome { try run(arguments + ["--threads", "1"]) }

    private func succeed(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let outcome = try cmkit(arguments)
        XCTAssertEqual(outcome.status, 0, "cmkit \(arguments.joined(separator: " ")): \(outcome.output)", file: file, line: line)
    }

    private func expectError(_ arguments: [String], says: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try super.expectError(arguments + ["--threads", "1"], says: says, file: file, line: line)
    }

    /// An untrained checkpoint of `method` for images of `shape` (mlp-toy for points), trained on `data` as far as
    /// its config says.
    private func checkpoint(_ name: String, method: MethodName = .ict, shape: [Int] = [3, 8, 8], data: String? = nil) throws -> String {
        var config = TrainingConfig(method: method)
        config.model = shape.count == 3 ? .unetXS : .mlpToy
        config.sampleShape = shape
        config.data = data ?? (shape.count == 3 ? "shapes" : "toy:checkerboard")
        config.iterations = 10
        let file = path("\(name).safetensors")
        try Trainer(config: config).checkpoint().write(to: URL(fileURLWithPath: file))
        return file
    }

    /// `count` random images in [-1, 1] written as .npy.
    private func imagesFile(_ name: String, count: Int = 2, shape: [Int] = [3, 8, 8]) throws -> (path: String, images: Tensor) {
        var rng = SplitMix64(seed: 6)
        let images = Tensor.uniform(shape: [count] + shape, low: -1, high: 1, rng: &rng)
        try NPY.write(images, to: path(name))
        return (path(name), images)
    }

    /// A gray PNG of `side` x `side` with the given pixel values (row-major).
    private func picture(_ name: String, side: Int, pixels: (Int, Int) -> UInt8) throws -> String {
        try PNG.write(Bitmap(width: side, height: side, channels: 1, pixels: (0..<(side * side)).map { pixels($0 / side, $0 % side) }), to: path(name))
        return path(name)
    }

    // MARK: - What each task keeps

    func testEachTaskKeepsWhatIsKnownOfItsInput() throws {
        let rgb = try checkpoint("rgb")
        let (inputs, images) = try imagesFile("in.npy")
        // Inpainting: the left half is white (kept); every result holds those pixels bit for bit.
        let mask = try picture("mask.png", side: 8) { _, x in x < 4 ? 255 : 0 }
        try succeed(["edit", "--checkpoint", rgb, "--task", "inpaint", "--image", inputs, "--mask", mask, "--steps", "1,2",
                     "--variations", "2", "--out", path("inpaint.png"), "--npy", path("inpaint.npy")])
        let inpainted = try NPY.read(path("inpaint.npy")).tensor
        XCTAssertEqual(inpainted.shape, [2 * 2 * 2, 3, 8, 8], "step counts x inputs x variations")
        for r in 0..<8 {
            let input = (r / 2) % 2
            for i in 0..<192 where i % 8 < 4 {
                XCTAssertEqual(inpainted.storage[r * 192 + i].bitPattern, images.storage[input * 192 + i].bitPattern, "result \(r), element \(i)")
            }
        }
        let grid = try PNG.readBitmap(path("inpaint.png"))
        XCTAssertGreaterThan(grid.width, 8 * (2 + 2 * 2), "input, known part and 2 x 2 results side by side")

        // Super-resolution: the 2x2 block means are the input's.
        try succeed(["edit", "--checkpoint", rgb, "--task", "superres", "--factor", "2", "--image", inputs, "--steps", "2",
                     "--variations", "1", "--out", path("sr.png"), "--npy", path("sr.npy")])
        let op = try BlockAveraging(factor: 2, sampleShape: [3, 8, 8])
        assertNear(op.apply(try NPY.read(path("sr.npy")).tensor).storage, op.apply(images).storage, 1e-5, "block means")

        // Colorization of a gray PNG: the result's luminance is the gray value.
        let gray = try picture("gray.png", side: 8) { y, x in UInt8(16 * y + 8 * x) }
        try succeed(["edit", "--checkpoint", rgb, "--task", "colorize", "--image", gray, "--steps", "1", "--variations", "2",
                     "--out", path("color.png"), "--npy", path("color.npy")])
        let colored = try NPY.read(path("color.npy")).tensor
        XCTAssertEqual(colored.shape, [2, 3, 8, 8])
        let want = try PNG.read(gray).storage
        assertNear(Luminance.luminance(colored).storage, want + want, 1e-5, "luminance")

        // Denoising from the inputs at sigma 0.5.
        try succeed(["edit", "--checkpoint", rgb, "--task", "denoise", "--sigma", "0.5", "--image", inputs, "--out", path("dn.png")])
    }

    func testInterpolationEndsAreTheSamplesOfTheTwoSeeds() throws {
        let rgb = try checkpoint("rgb")
        try succeed(["edit", "--checkpoint", rgb, "--task", "interpolate", "--seeds", "3,8", "--count", "4", "--steps", "1,2",
                     "--out", path("i.png"), "--npy", path("i.npy")])
        let points = try NPY.read(path("i.npy")).tensor
        XCTAssertEqual(points.shape, [8, 3, 8, 8], "two rows of four")
        for (row, steps) in [(0, 1), (1, 2)] {
            for (column, seed) in [(0, 3), (3, 8)] {
                try succeed(["sample", "--checkpoint", rgb, "--seed", "\(seed)", "--count", "1", "--steps", "\(steps)",
                             "--out", path("s.png"), "--npy", path("s.npy")])
                let k = 4 * row + column
                XCTAssertEqual(Array(points.storage[(k * 192)..<((k + 1) * 192)]), try NPY.read(path("s.npy")).tensor.storage,
                               "\(steps) steps: point \(column) is `sample --seed \(seed) --count 1`")
            }
        }
    }

    // MARK: - Scoring against --reference

    func testReferenceScoresEveryStepCountBesideABaseline() throws {
        // The checkpoint's training data: a folder of a white and a dark 8x8 image (255 and 51: 1 and -0.6), so the
        // training mean is 0.2 everywhere.
        let folder = path("train")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, value) in [("a.png", UInt8(255)), ("b.png", UInt8(51))] {
            try PNG.write(Bitmap(width: 8, height: 8, channels: 3, pixels: Array(repeating: value, count: 192)), to: "\(folder)/\(name)")
        }
        let rgb = try checkpoint("rgb", data: "folder:\(folder)")
        let (inputs, truth) = try imagesFile("in.npy")
        let mask = try picture("mask.png", side: 8) { _, x in x < 4 ? 255 : 0 }            // fill the right half
        let outcome = try cmkit(["edit", "--checkpoint", rgb, "--task", "inpaint", "--image", inputs, "--mask", mask, "--steps", "1,2",
                                 "--variations", "2", "--reference", inputs, "--out", path("inpaint.png"), "--npy", path("inpaint.npy")])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("mean squared error against --reference, [-1, 1] units, over filled pixels (96 values per image)"), outcome.output)
        let results = try NPY.read(path("inpaint.npy")).tensor            // (steps x inputs x variations, 3, 8, 8)
        /// Mean over items j of the squared error of `value(j, e)` against input `input(j)`, over the right half.
        func filledError(_ items: Int, input: (Int) -> Int, _ value: (Int, Int) -> Float) -> Double {
            var sum = 0.0, n = 0
            for j in 0..<items { for e in 0..<192 where e % 8 >= 4 {
                let d = Double(value(j, e)) - Double(truth.storage[input(j) * 192 + e])
                sum += d * d; n += 1
            } }
            return sum / Double(n)
        }
        let (header, rows) = try errorTable(path("inpaint-errors.csv"))
        XCTAssertEqual(header, ["task", "steps", "region", "values_per_image", "mse", "variation_mean_mse", "baseline", "baseline_mse"])
        XCTAssertEqual(rows.map { Array($0[0..<4]) }, [["inpaint", "1", "filled pixels", "96"], ["inpaint", "2", "filled pixels", "96"]])
        let meanFill = filledError(2, input: { $0 }) { _, _ in 0.2 }
        for (k, row) in rows.enumerated() {
            let want = filledError(4, input: { $0 / 2 }) { j, e in results.storage[(4 * k + j) * 192 + e] }
            XCTAssertEqual(try XCTUnwrap(Double(row[4])), want, accuracy: 1e-6, "\(k + 1) steps: the results' error")
            // Row 2i + v of this step count is variation v of input i; their mean against input i.
            let mean = filledError(2, input: { $0 }) { i, e in
                let first = (4 * k + 2 * i) * 192 + e
                return (results.storage[first] + results.storage[first + 192]) / 2
            }
            XCTAssertEqual(try XCTUnwrap(Double(row[5])), mean, accuracy: 1e-6, "\(k + 1) steps: the error of the variations' mean")
            XCTAssertEqual(row[6], "training-mean fill")
            XCTAssertEqual(try XCTUnwrap(Double(row[7])), meanFill, accuracy: 1e-6, "the training mean, 0.2, in the filled half")
        }

        // Super-resolution: all 192 values; the baseline is the input's block means repeated over their blocks.
        try succeed(["edit", "--checkpoint", rgb, "--task", "superres", "--factor", "4", "--image", inputs, "--steps", "1",
                     "--variations", "1", "--reference", inputs, "--out", path("sr.png"), "--npy", path("sr.npy")])
        let op = try BlockAveraging(factor: 4, sampleShape: [3, 8, 8])
        let blocks = op.pseudoInverse(op.apply(truth)), sr = try NPY.read(path("sr.npy")).tensor
        func error(_ x: Tensor) -> Double { zip(x.storage, truth.storage).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / 384 }
        let row = try errorTable(path("sr-errors.csv")).rows[0]
        XCTAssertEqual(Array(row[0..<4]) + Array(row[5...6]), ["superres", "1", "all pixels", "192", "", "nearest-neighbour block means"],
                       "one variation: no mean of variations")
        XCTAssertEqual(try XCTUnwrap(Double(row[4])), error(sr), accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(Double(row[7])), error(blocks), accuracy: 1e-6)
        XCTAssertGreaterThan(error(blocks), 0.1, "random images are far from their block means")
    }

    /// The header and rows of an error table edit wrote.
    private func errorTable(_ file: String) throws -> (header: [String], rows: [[String]]) {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        return (lines[0], Array(lines.dropFirst()))
    }

    // MARK: - Errors

    func testEditRequestsThatCannotWorkSayWhatToChange() throws {
        let rgb = try checkpoint("rgb"), gray = try checkpoint("gray", shape: [1, 8, 8])
        let edm = try checkpoint("edm", method: .edm), points = try checkpoint("points", shape: [2])
        let inputs = try imagesFile("in.npy").path
        let small = try imagesFile("small.npy", shape: [3, 4, 4]).path, oneChannel = try imagesFile("one.npy", shape: [1, 8, 8]).path
        let mask = try picture("mask.png", side: 8) { _, x in x < 4 ? 255 : 0 }
        let smallMask = try picture("small-mask.png", side: 4) { _, _ in 255 }
        let grayMask = try picture("gray-mask.png", side: 8) { y, x in x < 4 ? 255 : (y == 0 ? 128 : 0) }
        let whiteMask = try picture("white-mask.png", side: 8) { _, _ in 255 }
        let single = try imagesFile("single.npy", count: 1).path
        let out = path("x.png")
        let rows: [(args: [String], says: String)] = [
            (["--checkpoint", rgb, "--task", "inpaint", "--image", small, "--mask", mask], "the images are 3x4x4 (channels x height x width), but the model makes 3x8x8"),
            (["--checkpoint", rgb, "--task", "inpaint", "--image", oneChannel, "--mask", mask], "the images are 1x8x8"),
            (["--checkpoint", rgb, "--task", "inpaint", "--image", inputs, "--mask", smallMask], "--mask \(smallMask): the mask is 1x4x4, but the images are 3x8x8"),
            (["--checkpoint", rgb, "--task", "inpaint", "--image", inputs, "--mask", grayMask], "4 of 64 values that are neither black nor white"),
            (["--checkpoint", rgb, "--task", "superres", "--image", inputs, "--factor", "3"], "--factor 3: factor 3 does not divide the 8x8 images"),
            (["--checkpoint", rgb, "--task", "superres", "--image", inputs, "--factor", "1"], "--factor must be at least 2"),
            (["--checkpoint", gray, "--task", "colorize", "--image", oneChannel], "--task colorize: colorization needs a model of RGB images"),
            (["--checkpoint", rgb, "--task", "inpaint", "--image", inputs], "--task inpaint needs --mask"),
            (["--checkpoint", rgb, "--task", "superres", "--image", inputs], "--task superres needs --factor"),
            (["--checkpoint", rgb, "--task", "denoise", "--image", inputs], "--task denoise needs --sigma"),
            (["--checkpoint", rgb, "--task", "colorize"], "--task colorize needs --image"),
            (["--checkpoint", rgb, "--task", "interpolate"], "--task interpolate needs --seeds"),
            (["--checkpoint", rgb, "--task", "interpolate", "--seeds", "3"], "--seeds takes two seeds"),
            (["--checkpoint", rgb, "--task", "superres", "--image", inputs, "--factor", "2", "--mask", mask], "--mask is for --task inpaint, not superres"),
            (["--checkpoint", rgb, "--task", "interpolate", "--seeds", "1,2", "--image", inputs], "--image is for --task inpaint"),
            (["--checkpoint", rgb, "--task", "denoise", "--image", inputs, "--sigma", "100"], "--sigma 100.0 is outside the model's noise range (0.002, 80.0]"),
            (["--checkpoint", rgb, "--task", "denoise", "--image", inputs, "--sigma", "0.001"], "--sigma 0.001 is outside the model's noise range"),
            (["--checkpoint", rgb, "--task", "denoise", "--image", inputs, "--sigma", "-1"], "--sigma must be a positive number"),
            (["--checkpoint", rgb, "--task", "colorize", "--image", path("missing.png")], "no such file or folder"),
            (["--checkpoint", edm, "--task", "colorize", "--image", inputs], "editing needs a consistency model (ict, ect, ctm)"),
            (["--checkpoint", points, "--task", "interpolate", "--seeds", "1,2"], "works on image models"),
            (["--checkpoint", rgb, "--task", "colorize", "--image", inputs, "--steps", "0"], "--steps must be step counts"),
            (["--checkpoint", rgb, "--task", "inpaint", "--image", inputs, "--mask", mask, "--reference", small],
             "--reference \(small): the reference images are 3x4x4, but the results are 3x8x8"),
            (["--checkpoint", rgb, "--task", "superres", "--factor", "2", "--image", inputs, "--reference", oneChannel],
             "the reference images are 1x8x8"),
            (["--checkpoint", rgb, "--task", "superres", "--factor", "2", "--image", inputs, "--reference", single],
             "--reference \(single): 1 reference image for 2 inputs; give one true image per input"),
            (["--checkpoint", rgb, "--task", "inpaint", "--image", inputs, "--mask", whiteMask, "--reference", inputs],
             "--mask \(whiteMask): the mask keeps every pixel, so nothing was filled to score"),
            (["--checkpoint", rgb, "--task", "colorize", "--image", inputs, "--reference", path("missing.npy")], "no such file or folder"),
            (["--checkpoint", rgb, "--task", "interpolate", "--seeds", "1,2", "--reference", inputs],
             "--reference is for --task inpaint, superres, colorize, denoise, not interpolate"),
        ]
        for row in rows { try expectError(["edit"] + row.args + ["--out", out], says: row.says) }
        try expectError(["edit", "--checkpoint", rgb, "--task", "colorize", "--image", inputs, "--out", inputs], says: "is the file given as --image")
    }

    private func assertNear(_ a: [Float], _ b: [Float], _ tolerance: Float, _ what: String, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): max difference \(worst)", line: line)
    }
}
