// Linear assignment and immiscible noise pairing against the shared vectors and brute force.
import XCTest
import CKTensor
import CKConsistency
import CKTestSupport

final class AssignmentTests: XCTestCase {
    func testAssignmentVector() throws {
        let v = try Vectors.load("assignment_6x6.json")
        let tol = try v.dict("tolerance")
        let exactness = try tol.string("assignment")
        XCTAssertEqual(exactness, "exact", "the optimum is unique; this test compares the permutation exactly")
        let rows = try v.matrix("cost"), n = rows.count
        try checkSameLength("\(v.file): cost is square", n, rows[0].count)
        let p = linearAssignment(cost: rows.flatMap { $0 }, count: n)
        XCTAssertEqual(p, try v.ints("assignment"))
        assertClose(assignmentCost(rows.flatMap { $0 }, count: n, p), try v.double("total_cost"), atol: 0, rtol: try tol.double("total_cost_rel"))
    }

    func testBruteForceOnRandomProblems() {
        var rng = SplitMix64(seed: 17)
        for trial in 0..<60 {
            let n = 1 + trial % 7
            // Integer-valued costs with many ties, and continuous ones.
            let cost = (0..<(n * n)).map { _ in trial % 2 == 0 ? Double(Int(rng.uniformDouble() * 5)) : rng.normalDouble() }
            let p = linearAssignment(cost: cost, count: n)
            XCTAssertEqual(Set(p).count, n, "not a permutation: \(p)")
            assertClose(assignmentCost(cost, count: n, p), bruteForceMinimum(cost, n), atol: 1e-12, rtol: 1e-12, "n=\(n) trial \(trial)")
        }
    }

    private func bruteForceMinimum(_ cost: [Double], _ n: Int) -> Double {
        var best = Double.infinity
        var perm = Array(0..<n)
        func recurse(_ k: Int) {
            if k == n { best = min(best, assignmentCost(cost, count: n, perm)); return }
            for i in k..<n { perm.swapAt(k, i); recurse(k + 1); perm.swapAt(k, i) }
        }
        recurse(0)
        return best
    }

    func testImmiscibleVectors() throws {
        let v = try Vectors.load("immiscible_fp16_6.json")
        let data = try v.matrix("data"), noise = try v.matrix("noise")
        let n = data.count, d = data[0].count
        try checkSameLength("\(v.file): data and noise rows", n, noise.count)
        try checkSameLength("\(v.file): data and noise sample sizes", d, noise[0].count)
        let x = Tensor(shape: [n, d], storage: data.flatMap { $0 }.map(Float.init))
        let z = Tensor(shape: [n, d], storage: noise.flatMap { $0 }.map(Float.init))
        let tol = try v.dict("tolerance"), costRel = try tol.double("cost_rel")
        let exactness = try tol.string("assignment")
        XCTAssertEqual(exactness, "exact", "this test compares the permutations exactly")

        XCTAssertEqual(noiseAssignment(batch: x, noise: z, mode: .quantized), try v.ints("assignment_fp16"))
        XCTAssertEqual(noiseAssignment(batch: x, noise: z, mode: .exact), try v.ints("assignment_exact_l2"))
        XCTAssertEqual(noiseAssignment(batch: x, noise: z, mode: .exact, squaredCost: true), try v.ints("assignment_squared_euclidean"))
        XCTAssertNil(noiseAssignment(batch: x, noise: z, mode: .off))

        // The fp16 distance matrix itself (0.1-scaled, binary16-rounded inputs).
        let distances = try v.matrix("distances_fp16_inputs")
        try checkSameLength("\(v.file): distances_fp16_inputs is n x n, n = \(n)", n, distances.count, distances[0].count)
        let scaled = Tensor(shape: [n, d], storage: data.flatMap { $0 }.map { Float(Float16(0.1 * Float($0))) })
        let scaledNoise = Tensor(shape: [n, d], storage: noise.flatMap { $0 }.map { Float(Float16(0.1 * Float($0))) })
        let got = pairwiseDistances(scaled, scaledNoise, squared: false)
        for (g, w) in try checkedZip(got, distances.flatMap { $0 }, "fp16 distances") { assertClose(g, w, atol: 0, rtol: costRel) }
        let pq = try XCTUnwrap(noiseAssignment(batch: x, noise: z, mode: .quantized))
        assertClose(assignmentCost(got, count: n, pq), try v.double("total_cost_fp16"), atol: 0, rtol: costRel)
        // The vector's exact-L2 total is the exact assignment's, in the 0.1-scaled units: ||0.1 x - 0.1 z|| = 0.1 ||x - z||.
        // (For the public file the two permutations agree; for other files they need not.)
        let exact = pairwiseDistances(x, z, squared: false), pe = try XCTUnwrap(noiseAssignment(batch: x, noise: z, mode: .exact))
        assertClose(0.1 * assignmentCost(exact, count: n, pe), try v.double("total_cost_exact_l2"), atol: 0, rtol: costRel)
    }

    func testReorderedRowsMovesWholeSamples() {
        let z = Tensor(shape: [3, 2], storage: [0, 1, 10, 11, 20, 21])
        XCTAssertEqual(reorderedRows(z, [2, 0, 1]).storage, [20, 21, 0, 1, 10, 11])
    }

    func testAssignmentLowersTheTotalDistance() {
        var rng = SplitMix64(seed: 3)
        let x = Tensor.normal(shape: [64, 1, 8, 8], rng: &rng) * 0.5
        let z = Tensor.normal(shape: [64, 1, 8, 8], rng: &rng)
        let cost = pairwiseDistances(x, z, squared: false)
        let p = noiseAssignment(batch: x, noise: z, mode: .exact)!
        XCTAssertLessThan(assignmentCost(cost, count: 64, p), assignmentCost(cost, count: 64, Array(0..<64)))
    }
}
