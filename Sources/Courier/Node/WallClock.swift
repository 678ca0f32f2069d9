#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The wall clock, for time-to-live deadlines (which must mean the same on both machines).
enum WallClock {
    /// Nanoseconds since the Unix epoch.
    static var nanoseconds: Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    /// The deadline `duration` from now, in nanoseconds since the Unix epoch.
    static func deadline(after duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return nanoseconds &+ seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
