/// Rate limit for the log lines about refused frames: per (peer, reason), the first refusal
/// is logged at once; later ones within `window` are only counted, and the next refusal after
/// the window logs one summary line with the count. Metrics still count every refusal, so a
/// flood of bad frames is a rising counter, not a flood of log lines.
struct RefusalLog {
    struct Key: Hashable {
        var peer: String
        var reason: String
    }

    /// What to log for one refusal.
    enum Decision: Equatable {
        /// Log this refusal; `suppressed` more were refused without a line since the last one.
        case log(suppressed: Int)
        /// Count it only.
        case suppress
    }

    private struct Entry {
        var windowStart: ContinuousClock.Instant
        var suppressed: Int
    }

    let window: Duration
    /// Most (peer, reason) pairs tracked; beyond it, peers share one entry per reason, so a
    /// flood from many ids cannot grow this table.
    let capacity: Int
    private var entries: [Key: Entry] = [:]

    init(window: Duration = .seconds(10), capacity: Int = 1024) {
        self.window = window
        self.capacity = capacity
    }

    mutating func refused(peer: String, reason: String, now: ContinuousClock.Instant) -> Decision {
        var key = Key(peer: peer, reason: reason)
        if entries[key] == nil, entries.count >= capacity {
            key = Key(peer: "*", reason: reason)
            if entries[key] == nil { entries = entries.filter { now - $0.value.windowStart < window } }
        }
        guard var entry = entries[key] else {
            entries[key] = Entry(windowStart: now, suppressed: 0)
            return .log(suppressed: 0)
        }
        if now - entry.windowStart < window {
            entry.suppressed += 1
            entries[key] = entry
            return .suppress
        }
        entries[key] = Entry(windowStart: now, suppressed: 0)
        return .log(suppressed: entry.suppressed)
    }
}
