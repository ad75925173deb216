// Linear assignment and immiscible noise pairing against the shared vectors and brute force.
import XCTest
import CKTensor
import CKConsistency
import CKTestSupport

final class AssignmentTests: XCTestCase {
    func testSixBySixVector() throws {
        let v = try Vectors.load("assignment_6x6.json")
        let rows = (v["cost"] as? [[Double]]) ?? []
        XCTAssertEqual(rows.count, 6)
        let p = linearAssignment(cost: rows.flatMap { $0 }, count: 6)
        XCTAssertEqual(p, v.doubles("assignment").map(Int.init))
        assertClose(assignmentCost(rows.flatMap { $0 }, count: 6, p), v.double("total_cost"), atol: 0, rtol: 1e-9)
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
        let data = (v["data"] as? [[Double]]) ?? [], noise = (v["noise"] as? [[Double]]) ?? []
        XCTAssertEqual(data.count, 6)
        let d = data[0].count
        let x = Tensor(shape: [6, d], storage: data.flatMap { $0 }.map(Float.init))
        let z = Tensor(shape: [6, d], storage: noise.flatMap { $0 }.map(Float.init))
        let tol = v.dict("tolerance").double("cost_rel")

        XCTAssertEqual(noiseAssignment(batch: x, noise: z, mode: .quantized), v.doubles("assignment_fp16").map(Int.init))
        XCTAssertEqual(noiseAssignment(batch: x, noise: z, mode: .exact), v.doubles("assignment_exact_l2").map(Int.init))
        XCTAssertEqual(noiseAssignment(batch: x, noise: z, mode: .exact, squaredCost: true),
                       v.doubles("assignment_squared_euclidean").map(Int.init))
        XCTAssertNil(noiseAssignment(batch: x, noise: z, mode: .off))

        // The fp16 distance matrix itself (0.1-scaled, binary16-rounded inputs).
        let want = ((v["distances_fp16_inputs"] as? [[Double]]) ?? []).flatMap { $0 }
        let scaled = Tensor(shape: [6, d], storage: data.flatMap { $0 }.map { Float(Float16(0.1 * Float($0))) })
        let scaledNoise = Tensor(shape: [6, d], storage: noise.flatMap { $0 }.map { Float(Float16(0.1 * Float($0))) })
        let got = pairwiseDistances(scaled, scaledNoise, squared: false)
        for (g, w) in zip(got, want) { assertClose(g, w, atol: 1e-6, rtol: tol) }
        let pq = noiseAssignment(batch: x, noise: z, mode: .quantized)!
        assertClose(assignmentCost(got, count: 6, pq), v.double("total_cost_fp16"), atol: 0, rtol: tol)
        let exact = pairwiseDistances(x, z, squared: false)
        // The vector's exact-L2 total is in the 0.1-scaled units: ||0.1 x - 0.1 z|| = 0.1 ||x - z||.
        assertClose(0.1 * assignmentCost(exact, count: 6, pq), v.double("total_cost_exact_l2"), atol: 0, rtol: tol)
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
