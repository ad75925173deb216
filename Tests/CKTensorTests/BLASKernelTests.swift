// The choice of OpenBLAS kernels when OpenBLAS falls back to its generic ones.
import XCTest
import CKTensor

final class BLASKernelTests: XCTestCase {
    func testAGenericFallbackIsReplacedByTheBestKernelTheCPUHas() {
        let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512cd"]
        XCTAssertEqual(BLASKernel.better(flags: avx512, current: "Prescott", environment: [:]), "SkylakeX")
        XCTAssertEqual(BLASKernel.better(flags: ["avx", "avx2", "fma"], current: "Prescott", environment: [:]), "Haswell")
        XCTAssertEqual(BLASKernel.better(flags: ["avx"], current: "Core2", environment: [:]), "Sandybridge")
        XCTAssertNil(BLASKernel.better(flags: ["sse3"], current: "Prescott", environment: [:]), "nothing better to run")
        XCTAssertNil(BLASKernel.better(flags: avx512, current: "Haswell", environment: [:]), "OpenBLAS chose a real kernel")
        XCTAssertNil(BLASKernel.better(flags: avx512, current: "Prescott", environment: ["OPENBLAS_CORETYPE": "Prescott"]),
                     "the user's choice stands")
    }
}
