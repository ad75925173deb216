// Adding lists of tensors in place, the concatenation split over the threads once.
import XCTest
import CKTestSupport
@testable import CKTensor

final class TensorBuffersTests: XCTestCase {
    /// Every value of every tensor is added once, also where the split between the threads falls inside a
    /// tensor or on an empty one; the list added from is left as it was.
    func testAddInPlaceAddsEveryValueOnce() {
        withThreads(2) {
            var rng = SplitMix64(seed: 3)
            let shapes: [[Int]] = [[3], [0], [101, 7], [1], [40_000]]
            var sums = shapes.map { Tensor.normal(shape: $0, rng: &rng) }
            let other = shapes.map { Tensor.normal(shape: $0, rng: &rng) }
            let before = sums.map(\.storage), otherBefore = other.map(\.storage)
            sums.addInPlace(other)
            for k in shapes.indices {
                XCTAssertEqual(sums[k].storage, zip(before[k], otherBefore[k]).map { $0 + $1 }, "tensor \(k) of \(shapes[k])")
                XCTAssertEqual(other[k].storage, otherBefore[k])
            }
        }
    }

    /// Values shared with another tensor are copied before the addition: the other tensor keeps its values.
    func testAddInPlaceLeavesSharedValuesAlone() {
        let a = Tensor(shape: [4], storage: [1, 2, 3, 4])
        var sums = [a]
        sums.addInPlace([Tensor(shape: [4], storage: [10, 10, 10, 10])])
        XCTAssertEqual(sums[0].storage, [11, 12, 13, 14])
        XCTAssertEqual(a.storage, [1, 2, 3, 4])
    }

    /// takeSum adds the lists in order (list 0 + list 1, then + list 2), which the last bits show when the
    /// lists' scales differ, and empties the lists.
    func testTakeSumAddsInListOrder() {
        var rng = SplitMix64(seed: 4)
        let scales: [Float] = [1, 1e-4, 1e4]
        var lists = scales.map { scale in [Tensor.normal(shape: [1000], rng: &rng).mapped(scale: scale, shift: 0)] }
        let values = lists.map { $0[0].storage }
        let expected = (0..<1000).map { i in (values[0][i] + values[1][i]) + values[2][i] }
        let reordered = (0..<1000).map { i in values[0][i] + (values[1][i] + values[2][i]) }
        XCTAssertNotEqual(expected, reordered, "the test's scales must make the order visible")
        let sums = lists.takeSum()
        XCTAssertEqual(sums.count, 1)
        XCTAssertEqual(sums[0].storage, expected)
        XCTAssertTrue(lists.isEmpty)
    }

    func testWithValueBuffersSeesEveryListAndTensor() {
        let lists = [[Tensor(shape: [2], storage: [1, 2]), Tensor(shape: [1], storage: [3])],
                     [Tensor(shape: [2], storage: [4, 5]), Tensor(shape: [1], storage: [6])]]
        let seen = lists.withValueBuffers { buffers in buffers.map { $0.map { Array($0) } } }
        XCTAssertEqual(seen, [[[1, 2], [3]], [[4, 5], [6]]])
    }
}
