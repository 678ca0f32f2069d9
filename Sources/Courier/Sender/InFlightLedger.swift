import CourierSpool

/// Per-number send records of one peer's stream, from the processed mark up to the highest
/// number sent: how often each was sent, when it was first sent (for round-trip samples),
/// and the payload bytes outstanding. Numbers are contiguous, so the records are an array
/// indexed by the number's distance from ``base``: no hashing per message.
struct InFlightLedger {
    private struct Entry {
        var attempts: UInt32 = 0
        var bytes: UInt32 = 0
        /// Whether `bytes` counts in ``bytesInFlight`` (from the first transmission in this
        /// run; a count restored from an earlier run holds no bytes until it goes again).
        var holdsBytes = false
        /// When attempt 1 went out; nil once it may no longer give a round-trip sample.
        var firstSentAt: ContinuousClock.Instant?
    }

    /// The number of `entries[head]`.
    private(set) var base: UInt64
    private var entries: [Entry] = []
    private var head = 0
    /// Payload bytes of the numbers sent at least once and not yet dropped.
    private(set) var bytesInFlight = 0

    init(after processed: UInt64) {
        base = processed + 1
    }

    private func index(_ sequence: UInt64) -> Int? {
        guard sequence >= base else { return nil }
        let offset = head + Int(sequence - base)
        return offset < entries.count ? offset : nil
    }

    /// Times `sequence` was sent (0: never, or finished).
    func attempts(of sequence: UInt64) -> UInt32 {
        index(sequence).map { entries[$0].attempts } ?? 0
    }

    /// When `sequence` was first sent, if it was sent exactly once since the round-trip
    /// samples were last reset.
    func firstSentAt(_ sequence: UInt64) -> ContinuousClock.Instant? {
        guard let i = index(sequence), entries[i].attempts == 1 else { return nil }
        return entries[i].firstSentAt
    }

    /// Records a transmission of `sequence` (attempt `attempt`, `bytes` of payload).
    mutating func sent(_ sequence: UInt64, attempt: UInt32, bytes: Int, at now: ContinuousClock.Instant) {
        guard sequence >= base else { return }
        let offset = head + Int(sequence - base)
        while entries.count <= offset { entries.append(Entry()) }
        if !entries[offset].holdsBytes {
            entries[offset].bytes = UInt32(clamping: bytes)
            entries[offset].holdsBytes = true
            bytesInFlight += bytes
        }
        entries[offset].attempts = attempt
        entries[offset].firstSentAt = attempt == 1 ? now : nil
    }

    /// Takes the counts an earlier run recorded for the numbers from ``base`` up to
    /// `upTo` (a new ledger's: nothing was sent in this run yet). They hold no bytes and
    /// give no round-trip sample.
    mutating func restore(_ recorded: SentAttempts, upTo limit: UInt64) {
        let top = min(recorded.sentUpTo, limit)
        guard top >= base, entries.count == head else { return }
        for sequence in base...top {
            entries.append(Entry(attempts: recorded.attempts(of: sequence)))
        }
    }

    /// The numbers held that were sent more than once, with their counts.
    func repeated() -> [UInt64: UInt32] {
        var found: [UInt64: UInt32] = [:]
        for i in head..<entries.count where entries[i].attempts >= 2 {
            found[base + UInt64(i - head)] = entries[i].attempts
        }
        return found
    }

    /// Forgets every number up to `mark` (processed: they are finished).
    mutating func drop(through mark: UInt64) {
        guard mark >= base else { return }
        let count = Int(min(mark - base + 1, UInt64(entries.count - head)))
        for i in head..<(head + count) where entries[i].holdsBytes {
            bytesInFlight -= Int(entries[i].bytes)
        }
        head += count
        base = mark + 1
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 4096, head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// No number sent so far may give a round-trip sample any more (after a reconnection:
    /// an acknowledgement may then answer an earlier copy).
    mutating func forgetSendTimes() {
        for i in head..<entries.count { entries[i].firstSentAt = nil }
    }
}
