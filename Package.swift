// swift-tools-version:6.0
import PackageDescription

// Release builds of the numeric modules compile as whole modules and, on x86-64, use AVX2/FMA (8-wide loops;
// every x86 server of the last decade has them). They keep Swift's checks: -Ounchecked, which compiled
// every precondition out (a violated shape check was a segfault, not a message), saved about 5% of a
// unet-xs training step in `cmkit bench` (0.488 s against 0.514 s, medians of two runs each, within the
// runs' noise), and the kernels that matter index through unsafe buffer pointers anyway.
#if arch(x86_64)
let vectorFlags = ["-target-cpu", "haswell"]
let cVectorFlags = ["-mavx2", "-mfma"]
#else
let vectorFlags: [String] = []
let cVectorFlags: [String] = []
#endif
let numericSettings: [SwiftSetting] = [.unsafeFlags(["-wmo"] + vectorFlags, .when(configuration: .release))]

let package = Package(
    name: "ConsistencyKit",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "cmkit", targets: ["cmkit"]),
        .library(name: "ConsistencyKit", targets: ["CKTensor", "CKNN", "CKConsistency", "CKImageIO", "CKDatasets", "CKEvaluation",
                                                   "CKTraining"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libpng's full read API behind return codes (libpng's errors longjmp, which Swift cannot catch).
        .target(name: "CPNGReader", dependencies: ["CPNG"]),
        .systemLibrary(name: "COpenMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CKMPIShim", dependencies: ["COpenMPI"]),
        // tcmalloc as the cmkit process's malloc (a library leaves the allocator to its program): 0.90-0.95x glibc's
        // mlp-toy step and 0.94-0.98x its unet-s step in `cmkit bench` (Sources/CKTensor/MemoryAllocator.swift).
        .systemLibrary(name: "CTCMalloc", pkgConfig: "libtcmalloc_minimal", providers: [.apt(["libgoogle-perftools-dev"])]),

        // Persistent worker threads that poll briefly between jobs (waking a sleeping thread is slow on VMs).
        .target(name: "CKThreadTeam"),
        // The Winograd transforms in AVX2 intrinsics (x86-64; elsewhere CKTensor keeps its Swift versions).
        .target(name: "CKWinograd", cSettings: [.unsafeFlags(cVectorFlags + ["-O2", "-fno-builtin-memcpy"])]),
        // The optimizers' moment update in AVX2 (x86-64; elsewhere CKNN keeps its Swift version). Products and sums
        // stay separate roundings, as in the Swift version and in torch.
        .target(name: "CKMoments", cSettings: [.unsafeFlags(cVectorFlags + ["-O2", "-ffp-contract=off"])]),
        // SiLU, its gradient and the embedding's sines and cosines in AVX-512 (x86-64 CPUs that have it; else CKTensor's
        // Swift loops, the same roundings for SiLU, and the C library's sinf and cosf).
        .target(name: "CKPointwise", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])]),
        // Single-thread products in AVX-512 for the pieces of a batch (x86-64 CPUs that have it; else OpenBLAS).
        .target(name: "CKGemm", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "CKTensor", dependencies: ["COpenBLAS", "CFFTW", "CKThreadTeam", "CKWinograd", "CKGemm", "CKPointwise"], swiftSettings: numericSettings),
        // CZlib: checkpoint CRC-32
        .target(name: "CKNN", dependencies: ["CKTensor", "CZlib", "CKMoments"], swiftSettings: numericSettings),
        .target(name: "CKConsistency", dependencies: ["CKTensor", "CKNN"], swiftSettings: numericSettings),
        .target(name: "CKImageIO", dependencies: ["CKTensor", "CPNG", "CPNGReader"], swiftSettings: numericSettings),
        .target(name: "CKDatasets", dependencies: ["CKTensor", "CKImageIO", "CZlib"], swiftSettings: numericSettings),
        .target(name: "CKEvaluation", dependencies: ["CKTensor", "CKNN", "CKDatasets"], swiftSettings: numericSettings),
        .target(name: "CKMPI", dependencies: ["CKTensor", "CKNN", "CKMPIShim"], swiftSettings: numericSettings),
        .target(name: "CKTraining", dependencies: ["CKTensor", "CKNN", "CKConsistency", "CKDatasets", "CKImageIO", "CKEvaluation"],
                swiftSettings: numericSettings),
        .executableTarget(name: "cmkit", dependencies: [
            "CKTensor", "CKNN", "CKConsistency", "CKImageIO", "CKDatasets", "CKEvaluation", "CKTraining", "CKMPI", "CTCMalloc",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The example of using the package from another one (Examples/SampleFromCheckpoint), built here so a test runs it.
        .executableTarget(name: "sample-from-checkpoint", dependencies: ["CKConsistency", "CKImageIO"],
                          path: "Examples/SampleFromCheckpoint/Sources/SampleFromCheckpoint"),

        .target(name: "CKTestSupport", dependencies: ["CKTensor"], path: "Tests/_CKTestSupport"),
        .testTarget(name: "CKTensorTests", dependencies: ["CKTensor", "CKTestSupport"]),
        .testTarget(name: "CKNNTests", dependencies: ["CKNN", "CKTestSupport"]),
        .testTarget(name: "CKConsistencyTests", dependencies: ["CKConsistency", "CKNN", "CKDatasets", "CKEvaluation", "CKTraining",
                                                               "CKImageIO", "CKTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "CKIOTests", dependencies: ["CKImageIO", "CKDatasets", "CKTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "CLITests", dependencies: ["CKTensor", "CKNN", "CKConsistency", "CKTraining", "CKImageIO", "CKTestSupport"]),
        .testTarget(name: "CKEvaluationTests", dependencies: ["CKEvaluation", "CKNN", "CKDatasets", "CKTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
