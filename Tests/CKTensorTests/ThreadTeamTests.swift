import XCTest
import Foundation
import Glibc
@testable import CKTensor

final class ThreadTeamTests: XCTestCase {
    /// Runs jobs of `counts[k]` items on `threads` threads; true when every item of every job ran exactly once.
    private func everyItemRunsOnce(counts: [Int], threads: Int) -> Bool {
        var ranOnce = true
        for count in counts {
            var runs = [Int](repeating: 0, count: count)
            runs.withUnsafeMutableBufferPointer { runs in
                ThreadTeam.run(count, threads: threads) { i in runs[i] += 1 }
            }
            ranOnce = ranOnce && runs.allSatisfy { $0 == 1 }
        }
        return ranOnce
    }

    /// Runs `repetitions` jobs of `threads` items, each item waiting (up to 2 s) until all of its job's items have
    /// started: they can only all start if they run on `threads` threads at once. Returns how many jobs did.
    private func jobsRunAtOnce(threads: Int, repetitions: Int) -> Int {
        var together = 0
        for _ in 0..<repetitions {
            let condition = NSCondition()
            var started = 0, allStarted = true
            ThreadTeam.run(threads, threads: threads) { _ in
                condition.lock()
                started += 1
                condition.broadcast()
                let deadline = Date(timeIntervalSinceNow: 2)
                while started < threads {
                    if !condition.wait(until: deadline) { allStarted = false; break }
                }
                condition.unlock()
            }
            if allStarted { together += 1 }
        }
        return together
    }

    func testEveryItemRunsOnce() {
        let counts = (0..<300).map { 1 + $0 % 17 }
        for threads in [2, 4, 2, 3, 1] {                 // the team grows to 3 workers, then jobs leave some out
            XCTAssertTrue(everyItemRunsOnce(counts: counts, threads: threads), "threads \(threads): an item ran twice or never")
        }
    }

    func testItemsRunOnSeveralThreadsAtOnce() {
        for threads in [2, 3, 2] {
            XCTAssertEqual(jobsRunAtOnce(threads: threads, repetitions: 20), 20, "threads \(threads)")
        }
    }

    func testSleepingWorkersWakeForTheNextJob() {
        ThreadTeam.setPollingTime(microseconds: 0)        // every worker sleeps between jobs
        defer { ThreadTeam.setPollingTime(microseconds: 200) }
        XCTAssertEqual(jobsRunAtOnce(threads: 2, repetitions: 50), 50)
        XCTAssertTrue(everyItemRunsOnce(counts: [Int](repeating: 8, count: 200), threads: 2))
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
