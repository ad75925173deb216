// cmkit bench's workload: each network times its own method's step on a batch of its own shape, and the
// JSON line carries what was timed.
import XCTest
import Foundation
import CKTensor
import CKNN
import CKConsistency

final class BenchmarkTests: XCTestCase {
    private func fields(_ result: BenchmarkResult) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any])
    }

    func testLatentBenchmarkTimesLatentCTStepsOnLatents() throws {
        var rng = SplitMix64(seed: 3)
        let latents = Tensor.normal(shape: [8, 4, 7, 7], rng: &rng) * 0.5
        let result = Benchmark.run(model: .latentNet, batch: latents, threads: 1, timedSteps: 2, warmupSteps: 1, sampleRepetitions: 1)
        var init0 = SplitMix64(seed: 0)
        let expected = ModelName.latentNet.make(sampleShape: [4, 7, 7], rng: &init0).parameterCount
        let json = try fields(result)
        XCTAssertEqual(json["model"] as? String, "latent-net")
        XCTAssertEqual(json["batch"] as? Int, 8)
        XCTAssertEqual(json["params"] as? Int, expected)
        for key in ["step_s_median", "step_s_min", "step_s_p90", "sample256_s"] {
            let seconds = try XCTUnwrap(json[key] as? Double, key)
            XCTAssertTrue(seconds.isFinite && seconds > 0, "\(key) = \(seconds)")
        }
        XCTAssertLessThanOrEqual(result.stepSecondsMin, result.stepSecondsMedian)
        XCTAssertLessThanOrEqual(result.stepSecondsMedian, result.stepSecondsP90)
        // The step's parts: each step's part is within its step, so each part's median is within the steps' median.
        for key in ["gradients_s_median", "update_s_median"] {
            let seconds = try XCTUnwrap(json[key] as? Double, key)
            XCTAssertTrue(seconds.isFinite && seconds > 0 && seconds <= result.stepSecondsMedian, "\(key) = \(seconds)")
        }
    }

    func testImageBenchmarkBuildsTheNetworkForTheBatchShape() throws {
        var rng = SplitMix64(seed: 4)
        let images = Tensor.uniform(shape: [4, 1, 28, 28], low: -1, high: 1, rng: &rng)
        let result = Benchmark.run(model: .unetXS, batch: images, threads: 1, timedSteps: 1, warmupSteps: 0, sampleRepetitions: 1)
        var init0 = SplitMix64(seed: 0)
        XCTAssertEqual(try fields(result)["params"] as? Int, ModelName.unetXS.make(sampleShape: [1, 28, 28], rng: &init0).parameterCount)
        XCTAssertEqual(result.model, "unet-xs")
    }
}
