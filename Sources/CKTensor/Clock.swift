// One monotonic clock for progress lines, ETAs and benchmarks.
import Glibc

public enum Clock {
    /// Seconds since an arbitrary fixed point; only differences mean anything.
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
