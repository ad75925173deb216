// Scoring edits against the true images: a perfect result scores 0, the errors and baselines equal hand computations
// on 2x2 images, inpainting counts only the filled pixels, and references of the wrong size or count are refused.
import XCTest
import CKTensor
import CKConsistency
import CKTestSupport

final class EditScoringTests: XCTestCase {
    /// Two gray 2x2 images, (2, 1, 2, 2), rows top to bottom.
    private let truth = Tensor(shape: [2, 1, 2, 2], storage: [0.5, -0.5, 1, 0,
                                                              -1, 0.25, 0, 0.75])
    /// Keeps the top row, fills the bottom one.
    private let topRow = Tensor(shape: [1, 2, 2], storage: [1, 1, 0, 0])

    /// Each row of t repeated `times` (image-major, as `edit` lays out variations).
    private func repeated(_ t: Tensor, _ times: Int) -> Tensor {
        let per = t.count / t.shape[0]
        return Tensor(shape: [t.shape[0] * times] + t.shape.dropFirst(),
                      storage: (0..<t.shape[0]).flatMap { r in (0..<times).flatMap { _ in t.storage[(r * per)..<((r + 1) * per)] } })
    }

    func testAPerfectResultScoresZero() throws {
        var rng = SplitMix64(seed: 2)
        let rgb = Tensor.uniform(shape: [3, 3, 4, 4], low: -1, high: 1, rng: &rng)
        let mask = Tensor(shape: [1, 4, 4], storage: (0..<16).map { $0 % 3 == 0 ? 0 : 1 })
        let tasks: [EditTask] = [.inpaint(mask: mask), .superResolution(factor: 2), .colorize, .denoise(sigma: 0.3)]
        for task in tasks {
            let score = try task.score(repeated(rgb, 2), variations: 2, inputs: rgb, reference: rgb,
                                       trainingMean: Tensor(zeros: [3, 4, 4]))
            XCTAssertEqual(score.mse, 0, "\(task.baselineName): results equal to the truth")
            XCTAssertNotNil(score.baselineMSE)
        }
    }

    func testInpaintingScoresTheFilledPixelsAgainstTheMeanFillByHand() throws {
        let mean = Tensor(shape: [1, 2, 2], storage: [0, 0, 0.5, -0.5])
        // Results: image 0's bottom row off by (0.5, -1); the top row wrong too (1 and 1 away), but it is known, so
        // it does not count. Image 1 filled perfectly.
        let results = Tensor(shape: [2, 1, 2, 2], storage: [1.5, 0.5, 1.5, -1,
                                                            -1, 0.25, 0, 0.75])
        let score = try EditTask.inpaint(mask: topRow).score(results, variations: 1, inputs: truth, reference: truth, trainingMean: mean)
        XCTAssertEqual(score.scoredElements, 2, "the bottom row of each image")
        // Filled values: image 0 (1.5, -1) vs (1, 0): 0.25 + 1; image 1 exact: 0 + 0. Mean over 4 values: 1.25 / 4.
        XCTAssertEqual(score.mse, 1.25 / 4, accuracy: 1e-12)
        XCTAssertNil(score.variationMeanMSE, "one variation: no mean to take")
        // Mean fill (0.5, -0.5) vs image 0's (1, 0): 0.25 + 0.25; vs image 1's (0, 0.75): 0.25 + 1.5625. Sum 2.3125 / 4.
        XCTAssertEqual(try XCTUnwrap(score.baselineMSE), 2.3125 / 4, accuracy: 1e-12)
        // The baseline picture keeps the known row of each input and has the mean below it.
        let fill = try XCTUnwrap(EditTask.inpaint(mask: topRow).baseline(truth, sampleShape: [1, 2, 2], trainingMean: mean))
        XCTAssertEqual(fill.storage, [0.5, -0.5, 0.5, -0.5, -1, 0.25, 0.5, -0.5])
        // Without the training mean there is no baseline, but still the error.
        let alone = try EditTask.inpaint(mask: topRow).score(results, variations: 1, inputs: truth, reference: truth)
        XCTAssertNil(alone.baselineMSE)
        XCTAssertEqual(alone.mse, score.mse)
    }

    func testVariationsAreComparedWithTheirOwnInput() throws {
        // Two variations per input: image 0's first result perfect, its second 1 off everywhere; image 1's both perfect.
        var results = repeated(truth, 2)
        for e in 4..<8 { results.storage[e] += 1 }
        let score = try EditTask.denoise(sigma: 0.1).score(results, variations: 2, inputs: truth, reference: truth)
        XCTAssertEqual(score.mse, 4.0 / 16, accuracy: 1e-12, "4 of 16 values off by 1")
        // Image 0's mean result is 0.5 off in its 4 values, image 1's exact: 4 * 0.25 over 8 values.
        XCTAssertEqual(try XCTUnwrap(score.variationMeanMSE), 1.0 / 8, accuracy: 1e-12, "the mean of each input's variations")
        XCTAssertEqual(score.baselineMSE, 0, "the baseline is the input, here the truth itself")
    }

    func testSuperResolutionBaselineIsTheBlockMeanEverywhere() throws {
        // One 2x2 block per image: its mean repeated, so the baseline's error is the block's variance.
        // Image 0: mean 0.25, squared deviations 0.0625 + 0.5625 + 0.5625 + 0.0625 = 1.25.
        // Image 1: mean 0, squared deviations 1 + 0.0625 + 0 + 0.5625 = 1.625. Over 8 values: 2.875 / 8.
        let results = Tensor(zeros: [2, 1, 2, 2])
        let score = try EditTask.superResolution(factor: 2).score(results, variations: 1, inputs: truth, reference: truth)
        XCTAssertEqual(score.scoredElements, 4)
        XCTAssertEqual(try XCTUnwrap(score.baselineMSE), 2.875 / 8, accuracy: 1e-7)
        // Results of all zeros: the mean of the squares, (0.25 + 0.25 + 1 + 0 + 1 + 0.0625 + 0 + 0.5625) / 8.
        XCTAssertEqual(score.mse, 3.125 / 8, accuracy: 1e-12)
    }

    func testColorizationBaselineIsTheLuminanceInEveryChannel() throws {
        // One pure red pixel: luminance 0.2989 * 1 + 0.587 * (-1) + 0.114 * (-1) = -0.4021, shown as gray (L, L, L).
        let red = Tensor(shape: [1, 3, 1, 1], storage: [1, -1, -1])
        let gray = try XCTUnwrap(EditTask.colorize.baseline(red, sampleShape: [3, 1, 1], trainingMean: nil))
        assertClose(gray.storage, [-0.4021, -0.4021, -0.4021], atol: 1e-6, rtol: 0, "gray")
        let score = try EditTask.colorize.score(red, variations: 1, inputs: red, reference: red)
        let want = (1.4021 * 1.4021 + 2 * 0.5979 * 0.5979) / 3       // R is 1.4021 too dark, G and B 0.5979 too light
        XCTAssertEqual(try XCTUnwrap(score.baselineMSE), want, accuracy: 1e-6)
    }

    func testTheTrainingMeanImageByHand() {
        let images = Tensor(shape: [3, 1, 1, 2], storage: [1, -1, 0.5, 0, -0.25, 0.5])
        XCTAssertEqual(EditScore.meanImage(images).shape, [1, 1, 2])
        assertClose(EditScore.meanImage(images).storage, [1.25 / 3, -0.5 / 3], atol: 1e-7, rtol: 0, "mean image")
    }

    func testReferencesThatCannotBeTheTruthAreRefused() throws {
        let task = EditTask.inpaint(mask: topRow)
        func expect(_ reference: Tensor, _ want: EditError, says text: String, line: UInt = #line) {
            XCTAssertThrowsError(try task.score(truth, variations: 1, inputs: truth, reference: reference), line: line) {
                XCTAssertEqual($0 as? EditError, want, line: line)
                XCTAssertTrue("\($0)".contains(text), "\($0)", line: line)
            }
        }
        expect(Tensor(zeros: [2, 1, 4, 4]), .referenceShape(reference: [1, 4, 4], samples: [1, 2, 2]),
               says: "the reference images are 1x4x4, but the results are 1x2x2")
        expect(Tensor(zeros: [2, 3, 2, 2]), .referenceShape(reference: [3, 2, 2], samples: [1, 2, 2]), says: "model's size and channels")
        expect(Tensor(zeros: [1, 1, 2, 2]), .referenceCount(reference: 1, images: 2), says: "1 reference image for 2 inputs")
        expect(Tensor(zeros: [3, 1, 2, 2]), .referenceCount(reference: 3, images: 2), says: "3 reference images for 2 inputs")
        // A mask that keeps everything leaves nothing to score; refused before any editing.
        XCTAssertThrowsError(try EditTask.inpaint(mask: Tensor(repeating: 1, shape: [1, 2, 2]))
            .check(reference: truth, inputCount: 2, sampleShape: [1, 2, 2])) {
            XCTAssertEqual($0 as? EditError, .nothingToScore)
        }
    }
}
