// Batch Styles Standardization against the shared vector, and its defining properties.
import XCTest
import CKTensor
import CKConsistency
import CKTestSupport

final class BatchStylesTests: XCTestCase {
    func testVector() throws {
        let v = try Vectors.load("bss_8x8.json")
        let params = try v.dict("params")
        let shape = try params.ints("shape"), r = try Float(params.double("r"))
        try checkSameLength("\(v.file): params.shape is (B, C, H, W)", shape.count, 4)
        XCTAssertEqual(bssHalfWidth(ratio: r, height: shape[2], width: shape[3]), try params.int("half_width_b"))
        let input = try v.doubles("input")
        try checkSameLength("\(v.file): input against params.shape \(shape)", input.count, shape.reduce(1, *))
        let x = Tensor(shape: shape, storage: input.map(Float.init))
        let y = batchStyleStandardization(x, ratio: r, reference: try params.int("ref_index"))
        assertClose(y.storage, try v.doubles("output").map(Float.init), atol: try Float(v.dict("tolerance").double("abs")), rtol: 0, "bss output")
    }

    func testProperties() {
        var rng = SplitMix64(seed: 8)
        let x = Tensor.uniform(shape: [5, 3, 12, 10], low: -1, high: 1, rng: &rng)
        XCTAssertEqual(batchStyleStandardization(x, ratio: 0, reference: 1).storage, x.storage, "r = 0 is the identity")
        let y = batchStyleStandardization(x, ratio: 0.2, reference: 3)
        XCTAssertEqual(y.shape, x.shape)
        XCTAssertTrue(y.isFinite)
        let per = 3 * 12 * 10
        assertClose(Array(y.storage[(3 * per)..<(4 * per)]), Array(x.storage[(3 * per)..<(4 * per)]), atol: 0, rtol: 0, "reference unchanged")
        XCTAssertNotEqual(y.storage, x.storage)

        // Inside the band every image now has the reference's amplitude, channel by channel; outside, its own.
        let b = bssHalfWidth(ratio: 0.2, height: 12, width: 10), columns = 10 / 2 + 1
        func spectrum(_ t: Tensor, _ k: Int, _ c: Int) -> [Float] {
            var s = [Float](repeating: 0, count: 2 * 12 * columns)
            t.storage.withUnsafeBufferPointer { FFT.forward($0.baseAddress! + (k * 3 + c) * 120, height: 12, width: 10, spectrum: &s) }
            var amplitude = [Float](repeating: 0, count: 12 * columns)
            for i in amplitude.indices {
                let re = s[2 * i], im = s[2 * i + 1]
                amplitude[i] = (re * re + im * im).squareRoot()
            }
            return amplitude
        }
        for c in 0..<3 {
            let reference = spectrum(x, 3, c), own = spectrum(x, 0, c), after = spectrum(y, 0, c)
            for u in 0..<12 {
                for v in 0..<columns {
                    let i = u * columns + v
                    let inBand = min(u, 12 - u) <= b && v <= b
                    assertClose(after[i], inBand ? reference[i] : own[i], atol: 2e-4, rtol: 1e-4, "channel \(c) (\(u), \(v))")
                }
            }
        }
    }

    func testFFTRoundTrip() {
        var rng = SplitMix64(seed: 2)
        let x = Tensor.normal(shape: [7, 9], rng: &rng)
        var s = [Float](repeating: 0, count: 2 * FFT.halfSpectrumCount(height: 7, width: 9))
        var back = [Float](repeating: 0, count: 63)
        x.storage.withUnsafeBufferPointer { FFT.forward($0.baseAddress!, height: 7, width: 9, spectrum: &s) }
        assertClose(s[0], x.storage.reduce(0, +), atol: 1e-4, rtol: 1e-5, "DC = sum")
        FFT.inverse(&s, height: 7, width: 9, plane: &back)
        assertClose(back, x.storage, atol: 1e-5, rtol: 1e-5, "inverse(forward(x))")
    }

    func testReferenceDrawnFromTheGenerator() {
        var a = SplitMix64(seed: 4), b = SplitMix64(seed: 4)
        var rng = SplitMix64(seed: 1)
        let x = Tensor.uniform(shape: [6, 1, 8, 8], low: -1, high: 1, rng: &rng)
        let first = batchStyleStandardization(x, ratio: 0.25, rng: &a), second = batchStyleStandardization(x, ratio: 0.25, rng: &b)
        XCTAssertEqual(first.reference, second.reference)
        XCTAssertEqual(first.images.storage, second.images.storage)
    }
}
