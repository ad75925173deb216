// cmkit: the command-line front end. Each subcommand lives in its own file.
import ArgumentParser
import CKTensor
import CTCMalloc        // links tcmalloc, this process's malloc (Sources/CKTensor/MemoryAllocator.swift)

@main
struct CMKit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmkit",
        abstract: "Train consistency models on a CPU and sample images from them in one to a few steps.",
        subcommands: [Train.self, Sample.self, Edit.self, Compare.self, Score.self, PlotEval.self, PlotCompare.self, TrainAutoencoder.self, LatentStats.self, TrainClassifier.self, BSS.self, Bench.self])

    /// OpenBLAS's kernels are chosen when it loads: restart first if it fell back to generic ones.
    static func main() {
        BLASKernel.restartWithBetterKernelIfNeeded()
        main(nil)
    }
}
