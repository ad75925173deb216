import XCTest
import Glibc
@testable import CKTensor

final class ThreadTeamTests: XCTestCase {
    /// Counts, per job, how often each item ran and on how many distinct threads.
    private func runJobs(counts: [Int], threads: Int) -> (ranOnce: Bool, sawSecondThread: Bool) {
        var ranOnce = true, sawSecondThread = false
        for count in counts {
            var runs = [Int](repeating: 0, count: count)
            var runners = [pthread_t](repeating: 0, count: count)
            runs.withUnsafeMutableBufferPointer { runs in
                runners.withUnsafeMutableBufferPointer { runners in
                    ThreadTeam.run(count, threads: threads) { i in
                        runs[i] += 1
                        runners[i] = pthread_self()
                        // Long enough items that a worker that is awake gets some of them.
                        var x = 0.0
                        for k in 0..<2_000 { x += Double(k).squareRoot() }
                        if x < 0 { runs[i] += 1 }
                    }
                }
            }
            ranOnce = ranOnce && runs.allSatisfy { $0 == 1 }
            sawSecondThread = sawSecondThread || Set(runners.map { UInt($0) }).count > 1
        }
        return (ranOnce, sawSecondThread)
    }

    func testEveryItemRunsOnceOnSeveralThreads() {
        let counts = (0..<300).map { 1 + $0 % 17 }
        for threads in [2, 4, 2, 3] {                    // the team grows to 3 workers, then jobs leave some out
            let (ranOnce, sawSecondThread) = runJobs(counts: counts, threads: threads)
            XCTAssertTrue(ranOnce, "threads \(threads): an item ran twice or never")
            XCTAssertTrue(sawSecondThread, "threads \(threads): every item ran on the calling thread")
        }
    }

    func testSleepingWorkersWakeForTheNextJob() {
        ThreadTeam.setPollingTime(microseconds: 0)        // every worker sleeps between jobs
        defer { ThreadTeam.setPollingTime(microseconds: 200) }
        let (ranOnce, sawSecondThread) = runJobs(counts: [Int](repeating: 8, count: 200), threads: 2)
        XCTAssertTrue(ranOnce)
        XCTAssertTrue(sawSecondThread)
    }

    func testAJobInsideAnItemRunsOnItsThread() {
        var inner = [[pthread_t]](repeating: [], count: 4)
        var outer = [pthread_t](repeating: 0, count: 4)
        inner.withUnsafeMutableBufferPointer { inner in
            outer.withUnsafeMutableBufferPointer { outer in
                ThreadTeam.run(4, threads: 2) { i in
                    outer[i] = pthread_self()
                    var mine = [pthread_t](repeating: 0, count: 3)
                    mine.withUnsafeMutableBufferPointer { mine in
                        ThreadTeam.run(3, threads: 2) { j in mine[j] = pthread_self() }
                    }
                    inner[i] = mine
                }
            }
        }
        for i in 0..<4 {
            XCTAssertEqual(inner[i].map { UInt($0) }, [UInt](repeating: UInt(outer[i]), count: 3), "item \(i)")
        }
    }
}
