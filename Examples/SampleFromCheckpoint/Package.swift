// swift-tools-version:6.0
// Using ConsistencyKit from another package: load a checkpoint, sample, write a PNG.
// (Inside this repository the same source is also built as the `sample-from-checkpoint` target of the
// main package, and a test runs it, so this example stays true.)
import PackageDescription

let package = Package(
    name: "SampleFromCheckpoint",
    dependencies: [
        // From elsewhere: .package(url: "https://github.com/<you>/ConsistencyKit", branch: "main")
        .package(name: "ConsistencyKit", path: "../.."),
    ],
    targets: [
        .executableTarget(name: "SampleFromCheckpoint", dependencies: [
            .product(name: "ConsistencyKit", package: "ConsistencyKit"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
