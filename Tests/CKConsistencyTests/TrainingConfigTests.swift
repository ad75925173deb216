// The training config in checkpoints: closed choices refuse unknown values with the valid ones, method
// options decode over their defaults (older files lack newer settings), keys are written in order.
import XCTest
import Foundation
import CKNN
import CKConsistency
import CKTestSupport

final class TrainingConfigTests: XCTestCase {
    private func checkpoint(config json: String) -> Checkpoint { Checkpoint(metadata: ["config": json]) }

    func testUnknownChoicesAreRefusedWithTheValidOnes() {
        let cases: [(json: String, field: String, value: String, valid: [String])] = [
            (#"{"method":"ddpm"}"#, "method", "ddpm", MethodName.allCases.map(\.rawValue)),
            (#"{"model":"unet-m"}"#, "model", "unet-m", ModelName.allCases.map(\.rawValue)),
            (#"{"optimizer":"sgd"}"#, "optimizer", "sgd", OptimizerName.allCases.map(\.rawValue)),
            (#"{"immiscible":"knn"}"#, "immiscible", "knn", NoiseAssignment.allCases.map(\.rawValue)),
            (#"{"method":"lct","lct":{"metric":"l2"}}"#, "metric", "l2", LatentMetric.allCases.map(\.rawValue)),
        ]
        for c in cases {
            XCTAssertThrowsError(try TrainingConfig.stored(in: checkpoint(config: c.json), path: "c.safetensors"), c.json) { error in
                XCTAssertEqual(error as? TrainingError, .unknownValue(field: c.field, value: c.value, valid: c.valid), "\(error)")
                XCTAssertTrue("\(error)".contains(c.valid.joined(separator: ", ")), "\(error)")
            }
        }
        XCTAssertThrowsError(try TrainingConfig.stored(in: checkpoint(config: "{not json"), path: "c")) { error in
            guard case .unreadableConfig? = error as? TrainingError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try TrainingConfig.stored(in: Checkpoint(), path: "c")) { error in
            XCTAssertEqual(error as? TrainingError, .noTrainingConfig(path: "c"))
        }
    }

    func testMethodOptionsDecodeOverTheirDefaults() throws {
        // A CTM config from a file that knows only the grid: the rest keeps the values such files were
        // trained with (the step strategy and weighting defaults changed since), not today's defaults.
        let config = try TrainingConfig.stored(in: checkpoint(config: #"{"method":"ctm","ctm":{"gridPoints":7}}"#), path: "c")
        var want = CTMConfig.storedDefaults
        want.gridPoints = 7
        XCTAssertEqual(config.options(as: CTMConfig.self), want)
        XCTAssertEqual(want.stepStrategy, .weighted)
        XCTAssertEqual(want.weighting, .uniform)
        XCTAssertEqual(CTMConfig().stepStrategy, .uniform, "new runs draw k uniformly")
        XCTAssertEqual(CTMConfig().weighting, .jump, "new runs weigh short jumps up")
        XCTAssertEqual(CTMConfig().weightingPower, 2)
        // A stored value wins over both.
        let explicit = try TrainingConfig.stored(in: checkpoint(config: #"{"method":"ctm","ctm":{"stepStrategy":"uniform"}}"#), path: "c")
        XCTAssertEqual(explicit.options(as: CTMConfig.self).stepStrategy, .uniform)
        XCTAssertEqual(explicit.options(as: CTMConfig.self).weighting, .uniform)
        XCTAssertEqual(config.method, .ctm)
        // A method without a stored options object gets its defaults.
        let lct = try TrainingConfig.stored(in: checkpoint(config: #"{"method":"lct"}"#), path: "c")
        XCTAssertEqual(lct.options(as: LCTConfig.self), LCTConfig())
    }

    func testLearningRateDecay() throws {
        var config = TrainingConfig()
        config.iterations = 1000
        config.learningRate = 2e-3
        XCTAssertEqual((0..<1000).map { config.learningRate(atStep: $0) }, Array(repeating: 2e-3, count: 1000), "constant by default")
        config.learningRateDecay = 0.25
        // 250 decayed steps: k = 750 is the first, at 250/251 of the rate; the last (999) at 1/251.
        XCTAssertEqual(config.learningRate(atStep: 749), 2e-3)
        XCTAssertEqual(config.learningRate(atStep: 750), 2e-3 * 250 / 251, accuracy: 1e-9)
        XCTAssertEqual(config.learningRate(atStep: 900), 2e-3 * 100 / 251, accuracy: 1e-9)
        XCTAssertEqual(config.learningRate(atStep: 999), 2e-3 / 251, accuracy: 1e-9)
        let rates = (0..<1000).map { config.learningRate(atStep: $0) }
        XCTAssertTrue(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 }, "never rises")
        for bad in [0, -0.1, 1.5, Double.nan] {
            config.learningRateDecay = bad
            XCTAssertThrowsError(try config.validate(), "\(bad)") { error in
                XCTAssertTrue("\(error)".contains("learningRateDecay"), "\(error)")
            }
        }
        // Stored and read back; a config written before the setting existed keeps a constant rate.
        config.learningRateDecay = 0.25
        let read = try TrainingConfig.stored(in: checkpoint(config: try config.json()), path: "c")
        XCTAssertEqual(read.learningRateDecay, 0.25)
        XCTAssertEqual(read, config)
        let old = try TrainingConfig.stored(in: checkpoint(config: #"{"method":"edm","learningRate":0.001,"iterations":10}"#), path: "c")
        XCTAssertNil(old.learningRateDecay)
        XCTAssertEqual(old.learningRate(atStep: 9), 1e-3)
    }

    func testReplansGiveEachIterationItsCount() throws {
        var config = TrainingConfig()
        config.iterations = 100
        config.learningRateDecay = 0.5
        XCTAssertEqual(config.scheduled(atStep: 0), config, "a run that kept its count trains every iteration under it")
        // Iterations 0-9 were laid over 50, 10-29 over 80, the rest over the final 100.
        config.replans = [Replan(step: 10, previousIterations: 50), Replan(step: 30, previousIterations: 80)]
        try config.validate()
        XCTAssertEqual([0, 9, 10, 29, 30, 99].map { config.scheduled(atStep: $0).iterations }, [50, 50, 80, 80, 100, 100])
        XCTAssertEqual(config.scheduled(atStep: 5).replans, config.replans, "only the count changes")
        // The schedules read the count in effect: at k = 9 the decay of a 50-iteration run (25 decayed steps,
        // 41 left: constant); at k = 29 that of an 80-iteration run (40 decayed, 51 left: constant); at
        // k = 60 the final run's (50 decayed steps, 40 left: 40/51 of the rate).
        XCTAssertEqual(config.scheduled(atStep: 60).learningRate(atStep: 60), config.learningRate * 40 / 51, accuracy: 1e-12)
        XCTAssertEqual(config.scheduled(atStep: 9).resolvedEMADecay, EMA.decay(halfLife: 5))
        XCTAssertEqual(config.scheduled(atStep: 29).resolvedEMADecay, EMA.decay(halfLife: 8))
        XCTAssertEqual(config.scheduled(atStep: 30).resolvedEMADecay, EMA.decay(halfLife: 10))

        // Stored and read back; a config without re-plans writes no key, and older files read as none.
        let read = try TrainingConfig.stored(in: checkpoint(config: try config.json()), path: "c")
        XCTAssertEqual(read.replans, config.replans)
        XCTAssertEqual(read, config)
        config.replans = []
        XCTAssertFalse(try config.json().contains("replans"))
        let old = try TrainingConfig.stored(in: checkpoint(config: #"{"method":"ict","iterations":10}"#), path: "c")
        XCTAssertEqual(old.replans, [])

        // Steps that do not rise or leave the run, and counts that cannot cover their iterations, are refused.
        for bad in [[Replan(step: 0, previousIterations: 50)], [Replan(step: 100, previousIterations: 120)],
                    [Replan(step: 30, previousIterations: 80), Replan(step: 10, previousIterations: 50)],
                    [Replan(step: 10, previousIterations: 10), Replan(step: 10, previousIterations: 20)],
                    [Replan(step: 20, previousIterations: 19)]] {
            config.replans = bad
            XCTAssertThrowsError(try config.validate(), "\(bad)") { error in
                XCTAssertTrue("\(error)".contains("replans"), "\(error)")
            }
        }
    }

    func testRoundTripAndSortedKeys() throws {
        var config = TrainingConfig(method: .lct)
        config.model = .latentNet
        config.sampleShape = [4, 7, 7]
        config.emaDecay = 0.99
        config.bssRatio = 0.1
        var options = LCTConfig()
        options.metric = .huber
        options.otCoupling = false
        config.options = options
        let json = try config.json()
        XCTAssertEqual(try TrainingConfig.stored(in: checkpoint(config: json), path: "c"), config)
        let keys = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]).keys
        XCTAssertTrue(keys.contains("lct"), json)
        // Sorted keys: equal configs give equal bytes, whatever the process.
        let positions = keys.sorted().map { json.range(of: "\"\($0)\":")!.lowerBound }
        XCTAssertEqual(positions, positions.sorted(), json)
    }
}
