// What `cmkit train` does when no method is given: images get the ten-minute recipe (an EDM phase, then ECT
// on unet-xs with the recipe's settings), points get iCT; what the user gives overrides the recipe.
import XCTest
import Foundation
import CKNN
import CKConsistency
import CKTraining

final class DefaultRecipeTests: CLITestCase {
    private func cmkit(_ arguments: [String]) throws -> Outcome { try run(arguments) }

    private func plan(_ run: String) throws -> PretrainingPlan {
        try XCTUnwrap(try PretrainingPlan.read(from: RunDirectory(path: dir.appendingPathComponent(run).path)), "no pretraining.json in \(run)")
    }

    func testImagesWithoutMethodTrainTheRecipeInTwoPhases() throws {
        let run = try cmkit(["train", "--data", "shapes", "--no-classes", "--iters", "5", "--out", "r", "--save-every", "0", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.output)
        let plan = try plan("r")
        XCTAssertEqual(plan.pretrain.method, .edm)
        XCTAssertEqual(plan.method.method, ImageRecipe.method)
        XCTAssertEqual(plan.pretrain.iterations + plan.method.iterations, 5, "--iters counts both phases")
        XCTAssertEqual(plan.pretrain.iterations, ImageRecipe.pretrainIterations(of: 5))
        XCTAssertEqual(plan.pretrain.learningRate, ImageRecipe.pretrainLearningRate)
        XCTAssertEqual(plan.method.learningRate, ImageRecipe.learningRate)
        XCTAssertEqual(plan.pretrain.learningRateDecay, ImageRecipe.pretrainLearningRateDecay)
        XCTAssertEqual(plan.method.learningRateDecay, ImageRecipe.learningRateDecay)
        XCTAssertNotNil(plan.method.learningRateDecay, "the tuning phase's rate falls to zero")
        for config in [plan.pretrain, plan.method] {
            XCTAssertEqual(config.model, ImageRecipe.model)
            XCTAssertEqual(config.batchSize, ImageRecipe.batchSize)
        }
        let ect = try XCTUnwrap(plan.method.options as? ECTConfig)
        XCTAssertEqual(ect, ImageRecipe.options(classConditional: false))
        XCTAssertEqual(ect.guidance, 1, "an unconditional run has nothing to guide")
        XCTAssertNil(plan.method.classNames)
        let trained = try Checkpoint.read(from: RunDirectory(path: dir.appendingPathComponent("r").path).checkpoint)
        XCTAssertEqual(trained.metadata["step"], "\(plan.method.iterations)")
    }

    /// Labelled data (shapes' styles here, fashion-mnist's classes) trains class-conditional models by default, in
    /// both phases: the EDM model and its tuned consistency model know the same classes.
    func testTheRecipeTrainsClassConditionalModelsOnLabelledData() throws {
        let run = try cmkit(["train", "--data", "shapes", "--iters", "4", "--batch", "4", "--out", "r", "--save-every", "0",
                             "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("the model is class-conditional and samples its classes in turn (--no-classes: unconditional)"), run.output)
        let plan = try plan("r")
        XCTAssertEqual(plan.pretrain.classNames, ["sunset", "ocean", "forest", "paper"])
        XCTAssertEqual(plan.method.classNames, plan.pretrain.classNames)
        let model = try loadTrainedModel(from: RunDirectory(path: dir.appendingPathComponent("r").path).checkpoint)
        XCTAssertEqual(model.network.classCount, 4)
        let ect = try XCTUnwrap(plan.method.options as? ECTConfig)
        XCTAssertEqual(ect.guidance, ImageRecipe.classGuidance, "the tuning phase distills the guided EDM sampler")
        XCTAssertNotEqual(ect.guidance, 1)
        XCTAssertEqual(plan.method.learningRate, ImageRecipe.learningRate)
        XCTAssertEqual(plan.method.learningRateDecay, ImageRecipe.learningRateDecay)
        let stored = try Checkpoint.read(from: RunDirectory(path: dir.appendingPathComponent("r").path).checkpoint)
        XCTAssertNotNil(stored.tensor(named: "teacher.cemb.weight"), "with its teacher in the checkpoint")
    }

    func testGivenSettingsOverrideTheRecipe() throws {
        let run = try cmkit(["train", "--data", "shapes", "--no-classes", "--iters", "4", "--batch", "3", "--lr", "5e-4", "--ect-q", "8", "--pretrain-lr", "3e-4",
                             "--lr-decay", "0.2", "--pretrain-lr-decay", "0.4", "--pretrain-fraction", "0.25", "--out", "r", "--save-every", "0", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.output)
        let plan = try plan("r")
        XCTAssertEqual(plan.pretrain.iterations, 1)
        XCTAssertEqual(plan.method.iterations, 3)
        XCTAssertEqual(plan.method.batchSize, 3)
        XCTAssertEqual(plan.method.learningRate, 5e-4)
        XCTAssertEqual(plan.pretrain.learningRate, 3e-4)
        XCTAssertEqual(plan.method.learningRateDecay, 0.2)
        XCTAssertEqual(plan.pretrain.learningRateDecay, 0.4)
        XCTAssertEqual((plan.method.options as? ECTConfig)?.q, 8)
        XCTAssertEqual((plan.method.options as? ECTConfig)?.stages, ImageRecipe.options(classConditional: false).stages,
                       "what was not given stays the recipe's")
        XCTAssertNil((plan.method.options as? ECTConfig)?.lastStageShare)

        let staged = try cmkit(["train", "--data", "shapes", "--no-classes", "--iters", "4", "--batch", "3", "--ect-stages", "2", "--ect-last-stage", "0.25",
                                "--out", "s", "--save-every", "0", "--threads", "1"])
        XCTAssertEqual(staged.status, 0, staged.output)
        let stagedECT = try XCTUnwrap(try self.plan("s").method.options as? ECTConfig)
        XCTAssertEqual(stagedECT.stages, 2)
        XCTAssertEqual(stagedECT.lastStageShare, 0.25)
        for bad in ["0", "1", "-0.1", "nan"] {
            try expectError(["train", "--data", "shapes", "--iters", "4", "--ect-stages", "2", "--ect-last-stage", bad, "--out", path("bad")],
                            says: "--ect-last-stage must be a share between 0 and 1")
        }
        for bad in ["0", "1.5", "-0.1", "nan"] {
            try expectError(["train", "--data", "shapes", "--iters", "4", "--lr-decay", bad, "--out", path("bad")],
                            says: "--lr-decay must be a share of the run in (0, 1]")
            try expectError(["train", "--data", "shapes", "--iters", "4", "--pretrain-lr-decay", bad, "--out", path("bad")],
                            says: "--pretrain-lr-decay must be a share of the run in (0, 1]")
        }
    }

    func testReplannedCountsReachTheMethodPhaseOnly() throws {
        // What a re-planned --time run's note tells a user to type to repeat it.
        let run = try cmkit(["train", "--data", "shapes", "--no-classes", "--pretrain-iters", "2", "--iters", "6", "--replanned", "2:4",
                             "--replanned", "3:5", "--batch", "2", "--out", "r", "--save-every", "0", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.output)
        let plan = try plan("r")
        XCTAssertEqual(plan.method.iterations, 6)
        XCTAssertEqual(plan.method.replans, [Replan(step: 2, previousIterations: 4), Replan(step: 3, previousIterations: 5)])
        XCTAssertEqual(plan.pretrain.replans, [], "the EDM phase keeps its count")
        let stored = try TrainingConfig.stored(in: try Checkpoint.read(from: RunDirectory(path: path("r")).checkpoint), path: "r")
        XCTAssertEqual(stored.replans, plan.method.replans)
    }

    /// Half an hour or more of budget tunes without guidance (an EDM phase that long samples better unguided), and
    /// says so, also in the counts that repeat the run; shorter budgets, a given weight and unlabelled runs keep
    /// theirs. Each run is stopped as soon as its plan is written.
    func testTheBudgetChoosesTheGuidanceWeight() throws {
        func planned(_ options: [String], _ name: String) throws -> (plan: PretrainingPlan, output: String) {
            let file = PretrainingPlan.file(in: RunDirectory(path: path(name))).path
            let outcome = try run(["train", "--data", "shapes", "--batch", "4", "--out", name, "--threads", "1"] + options, timeout: 120,
                                  stopWhen: { FileManager.default.fileExists(atPath: file) })
            return (try plan(name), outcome.output)
        }
        let long = try planned(["--time", "30m"], "long")
        XCTAssertEqual((long.plan.method.options as? ECTConfig)?.guidance, 1)
        XCTAssertEqual(long.plan.repeatFlags, ["--ect-guidance 1"])
        XCTAssertTrue(long.output.contains("the tuning follows the EDM model's unguided sampler (--ect-guidance 1)"), long.output)

        let short = try planned(["--time", "29m"], "short")
        XCTAssertEqual((short.plan.method.options as? ECTConfig)?.guidance, ImageRecipe.classGuidance)
        XCTAssertNil(short.plan.repeatFlags)
        XCTAssertFalse(short.output.contains("unguided sampler"), short.output)

        let given = try planned(["--time", "1h", "--ect-guidance", "2"], "given")
        XCTAssertEqual((given.plan.method.options as? ECTConfig)?.guidance, 2)
        XCTAssertNil(given.plan.repeatFlags, "a weight the user gave is among the options already")

        let unlabelled = try planned(["--time", "1h", "--no-classes"], "unlabelled")
        XCTAssertEqual((unlabelled.plan.method.options as? ECTConfig)?.guidance, 1)
        XCTAssertNil(unlabelled.plan.repeatFlags, "an unconditional run has no weight to name")
    }

    func testPointsWithoutMethodTrainICTAndAGivenMethodIsKept() throws {
        let toy = try cmkit(["train", "--data", "toy:checkerboard", "--iters", "2", "--out", "t", "--save-every", "0", "--threads", "1"])
        XCTAssertEqual(toy.status, 0, toy.output)
        let checkpoint = try Checkpoint.read(from: RunDirectory(path: dir.appendingPathComponent("t").path).checkpoint)
        XCTAssertEqual(try TrainingConfig.stored(in: checkpoint, path: "t").method, .ict)
        let ict = try cmkit(["train", "--method", "ict", "--data", "shapes", "--model", "unet-xs", "--batch", "2", "--iters", "1",
                             "--out", "i", "--save-every", "0", "--threads", "1"])
        XCTAssertEqual(ict.status, 0, ict.output)
        XCTAssertNil(try PretrainingPlan.read(from: RunDirectory(path: dir.appendingPathComponent("i").path)))
        let ictConfig = try TrainingConfig.stored(in: try Checkpoint.read(from: RunDirectory(path: dir.appendingPathComponent("i").path).checkpoint), path: "i")
        XCTAssertNil(ictConfig.classNames, "a chosen method trains on the labels only with --classes")
    }

    func testTheRecipeNeedsTwoIterations() throws {
        let run = try cmkit(["train", "--data", "shapes", "--iters", "1", "--out", "r", "--threads", "1"])
        XCTAssertEqual(run.status, 1, run.output)
        XCTAssertTrue(run.output.contains("give --iters 2 or more"), run.output)
    }
}
