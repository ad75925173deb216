// What the loop reports while it runs, and how a front end prints it.
import Foundation

public struct TrainingProgress: Sendable {
    public let iteration: Int, iterations: Int
    /// Mean loss over the iterations since the last report.
    public let loss: Double
    /// Noise levels of the current grid (0 where the method has none).
    public let pointCount: Int
    public let iterationsPerSecond: Double
    /// Seconds since this session of the run started.
    public let elapsed: Double
    /// With a time budget: what is left of it.
    public var budgetLeft: Double? = nil

    public var secondsRemaining: Double { Double(iterations - iteration) / iterationsPerSecond }

    /// "iter 400/1200  loss 0.1234  N=21  2.05 it/s  ETA 6m30s"
    public var line: String {
        String(format: "iter %d/%d  loss %.4f  N=%d  %.2f it/s  ETA %@", iteration, iterations, loss, pointCount,
               iterationsPerSecond, formatDuration(secondsRemaining))
            + (budgetLeft.map { "  budget left \(formatDuration($0))" } ?? "")
    }
}

/// "1h05m", "6m30s", "42s"; "?" when not finite.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
    if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s)s"
}
