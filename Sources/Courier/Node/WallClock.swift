import CourierSpool

/// The wall clock, for time-to-live deadlines (which must mean the same on both machines).
enum WallClock {
    /// Nanoseconds since the Unix epoch (the spool's clock, so records and frames agree).
    static var nanoseconds: Int64 { wallClockNanoseconds() }

    /// The deadline `duration` from now, in nanoseconds since the Unix epoch.
    static func deadline(after duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return nanoseconds &+ seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
