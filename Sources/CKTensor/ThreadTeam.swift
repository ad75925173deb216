// The threads behind `Parallel`: the caller and persistent workers (Sources/CKThreadTeam) that poll for the next
// job for a moment after each one, so the many small parallel regions of a training step start without a wake-up.
import CKThreadTeam

enum ThreadTeam {
    /// Runs `body(i)` for every i in 0..<count, each once, on the calling thread and up to `threads - 1` workers;
    /// returns when all are done. Called from inside a job, or while another caller's job runs, the items run
    /// one after the other on the calling thread.
    static func run(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var job = body
            withUnsafeMutablePointer(to: &job) { job in
                ck_team_run(count, Int32(clamping: threads), { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }, job)
            }
        }
    }
}

extension ThreadTeam {
    /// How long an idle worker polls for the next job before it sleeps (200 microseconds unless set).
    static func setPollingTime(microseconds: Int) { ck_team_set_spin_microseconds(microseconds) }
}
