// The test support itself: closeness verdicts reject bad tolerances and non-finite values, vector accessors
// throw on a missing key or a wrong type, and walking arrays of different lengths is caught.
import XCTest
import Foundation
import CKTestSupport

final class TestSupportTests: XCTestCase {
    // MARK: - closenessProblem

    func testClosenessAcceptsValuesWithinTolerance() {
        XCTAssertNil(closenessProblem(got: [1.0, 2.0], want: [1.0, 2.0 + 1e-10], atol: 0, rtol: 1e-9))
        XCTAssertNil(closenessProblem(got: [Float(3)], want: [3], atol: 0, rtol: 0), "exact match at zero tolerance")
    }

    func testClosenessRejectsValuesOutsideTolerance() {
        XCTAssertNotNil(closenessProblem(got: [1.0, 2.1], want: [1.0, 2.0], atol: 1e-3, rtol: 1e-3))
    }

    func testClosenessRejectsBadTolerances() {
        for bad in [Double.nan, .infinity, -1e-6] {
            let a = closenessProblem(got: [1.0], want: [1.0], atol: bad, rtol: 1e-6)
            let r = closenessProblem(got: [1.0], want: [1.0], atol: 1e-6, rtol: bad)
            XCTAssertTrue(a?.contains("atol") ?? false, "atol \(bad): \(a ?? "accepted")")
            XCTAssertTrue(r?.contains("rtol") ?? false, "rtol \(bad): \(r ?? "accepted")")
        }
        XCTAssertNotNil(closenessProblem(got: [Float(1)], want: [1], atol: .nan, rtol: 0), "the Float path too")
    }

    func testClosenessRejectsNonFiniteValues() {
        XCTAssertNotNil(closenessProblem(got: [Double.nan], want: [1], atol: 1, rtol: 1))
        XCTAssertNotNil(closenessProblem(got: [1.0], want: [.nan], atol: 1, rtol: 1))
        // With want = inf the bound is inf as well; that must not let any value through.
        XCTAssertNotNil(closenessProblem(got: [5.0], want: [.infinity], atol: 0, rtol: 1))
        XCTAssertNotNil(closenessProblem(got: [Float.infinity], want: [1], atol: 1, rtol: 1))
    }

    func testClosenessRejectsMismatchedOrEmptyInputs() {
        XCTAssertNotNil(closenessProblem(got: [1.0, 2.0], want: [1.0], atol: 1, rtol: 1))
        XCTAssertNotNil(closenessProblem(got: [Double](), want: [], atol: 1, rtol: 1), "comparing nothing passes nothing")
    }

    // MARK: - Vector accessors

    private let sample = #"""
    {"tolerance": {"abs": 1e-6, "rel": 1e-5}, "name": "exact", "n": 7, "half": 2.5, "flag": true,
     "xs": [0, 1, 2.5], "ks": [0, 1, 2], "empty": [], "mixed": [1, "a"], "cost": [[1, 2], [3, 4]],
     "ragged": [[1, 2], [3]], "cases": [{"N": 3, "sigmas": [1, 2, 3]}, {"N": 2}]}
    """#

    private func record() throws -> VectorRecord { try Vectors.parse(Data(sample.utf8), name: "sample.json") }

    func testAccessorsReadPresentKeys() throws {
        let v = try record()
        XCTAssertEqual(try v.dict("tolerance").double("rel"), 1e-5)
        XCTAssertEqual(try v.string("name"), "exact")
        XCTAssertEqual(try v.int("n"), 7)
        XCTAssertEqual(try v.double("n"), 7)
        XCTAssertEqual(try v.doubles("xs"), [0, 1, 2.5])
        XCTAssertEqual(try v.ints("ks"), [0, 1, 2], "0 and 1 are numbers, not booleans")
        XCTAssertEqual(try v.matrix("cost"), [[1, 2], [3, 4]])
        let cases = try v.dicts("cases")
        XCTAssertEqual(try cases.map { try $0.int("N") }, [3, 2])
        XCTAssertEqual(cases[1].path, "cases[1]")
    }

    func testMissingKeyThrowsNamingFileAndKey() throws {
        let v = try record()
        let reads: [() throws -> Void] = [
            { _ = try v.double("tolerence") }, { _ = try v.int("tolerence") }, { _ = try v.string("tolerence") },
            { _ = try v.doubles("tolerence") }, { _ = try v.ints("tolerence") }, { _ = try v.matrix("tolerence") },
            { _ = try v.dict("tolerence") }, { _ = try v.dicts("tolerence") },
        ]
        for read in reads {
            XCTAssertThrowsError(try read()) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("sample.json") && message.contains("tolerence") && message.contains("missing"), message)
            }
        }
        // Inside a case the message gives the path to it.
        let second = try v.dicts("cases")[1]
        XCTAssertThrowsError(try second.doubles("sigmas")) { XCTAssertTrue("\($0)".contains("cases[1].sigmas"), "\($0)") }
    }

    func testWrongTypeThrows() throws {
        let v = try record()
        XCTAssertThrowsError(try v.double("name"))
        XCTAssertThrowsError(try v.double("flag"), "a boolean is not a number")
        XCTAssertThrowsError(try v.int("half"), "2.5 is not an integer")
        XCTAssertThrowsError(try v.string("n"))
        XCTAssertThrowsError(try v.doubles("mixed"))
        XCTAssertThrowsError(try v.ints("xs"))
        XCTAssertThrowsError(try v.dict("xs"))
        XCTAssertThrowsError(try v.dicts("xs"))
        XCTAssertThrowsError(try v.matrix("ragged")) { XCTAssertTrue("\($0)".contains("ragged"), "\($0)") }
        XCTAssertThrowsError(try v.doubles("tolerance")) { XCTAssertTrue("\($0)".contains("an object"), "\($0)") }
    }

    func testEmptyListsThrow() throws {
        let v = try record()
        XCTAssertThrowsError(try v.doubles("empty"))
        XCTAssertThrowsError(try v.dicts("empty"), "a family without cases tests nothing")
    }

    func testLoadNamesAMissingFile() {
        XCTAssertThrowsError(try Vectors.load("no_such_family.json")) { XCTAssertTrue("\($0)".contains("no_such_family.json"), "\($0)") }
    }

    // MARK: - Lengths

    func testMismatchedLengthsAreCaught() throws {
        XCTAssertThrowsError(try checkedZip([1, 2, 3], [1, 2], "sigmas")) { XCTAssertTrue("\($0)".contains("sigmas"), "\($0)") }
        XCTAssertEqual(try checkedZip([1, 2], [3, 4], "pairs").map { $0 + $1 }, [4, 6])
        XCTAssertThrowsError(try checkSameLength("square", 3, 3, 2))
        XCTAssertNoThrow(try checkSameLength("square", 3, 3, 3))
        let v = try Vectors.parse(Data(#"{"a": [1, 2, 3], "b": [1, 2]}"#.utf8), name: "columns.json")
        XCTAssertThrowsError(try v.columns(["a", "b"])) { XCTAssertTrue("\($0)".contains("columns.json"), "\($0)") }
    }
}
