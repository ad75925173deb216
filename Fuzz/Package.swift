// swift-tools-version:6.0
// libFuzzer harnesses for ConsistencyKit's file readers (PNG, IDX, NPY, checkpoints). See README.md:
//     swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address -j 1
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name (main, wt-harden, ...), so read it instead of spelling it.
let parent = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent()
let kit = parent.lastPathComponent.lowercased()

// Each harness's main.swift hands its test function to libFuzzer (FuzzSupport.runFuzzer).
func harness(_ name: String) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport", .product(name: "ConsistencyKit", package: kit)])
}

let package = Package(
    name: "CKFuzz",
    dependencies: [.package(path: parent.path)],
    targets: [
        .target(name: "FuzzSupport"),
        harness("FuzzPNG"), harness("FuzzIDX"), harness("FuzzNPY"), harness("FuzzCheckpoint"),
    ],
    swiftLanguageModes: [.v5]
)
