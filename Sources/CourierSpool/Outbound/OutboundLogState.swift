/// An append waiting for the writer thread.
struct AppendRequest {
    /// Nonzero for appends that can be cancelled (the `async` forms).
    var id: UInt64
    var entries: [SpoolEntry]
    var bytes: Int64
    var completion: @Sendable (Result<ClosedRange<UInt64>, SpoolError>) -> Void
}

/// Everything about an outbound log that more than one thread touches, behind one mutex.
struct OutboundLogState {
    var segments: [SegmentIndex]
    /// The sequence number the next append gets; everything below it is committed
    /// (durable under the policy) or missing (quarantined).
    var nextSequence: UInt64
    var acknowledgedUpTo: UInt64
    var persistedAcknowledgedUpTo: UInt64
    var pendingCount: Int = 0
    var pendingBytes: Int64 = 0
    var oldestPendingEnqueuedAt: Int64?
    var oldestNeedsRefresh = false

    var queue: [AppendRequest] = []
    var jobs: [@Sendable () -> Void] = []
    var flushWaiters: [@Sendable (Result<Void, SpoolError>) -> Void] = []
    var closed = false
    var writerSleeping = false
    /// The attempt counts last recorded (loaded at open, then as the node records them), and
    /// whether the writer has still to write them to `attempts.log`.
    var attempts: SentAttempts = .none
    var attemptsUnwritten = false

    var appendsCompleted = 0
    var syncs = 0
    var recordsSynced = 0

    /// The newest segment, without its offsets: copying a `SegmentIndex` out of the lock
    /// would share its offsets array and make the next append copy it whole.
    var active: ActiveSegment? {
        guard let last = segments.last else { return nil }
        return ActiveSegment(segment: last.segment, baseSequence: last.baseSequence, end: last.end, count: last.count)
    }

    /// Segment files in use (a file with quarantined ranges has several runs).
    var segmentFileCount: Int {
        var count = 0
        var previous: Segment?
        for index in segments where index.segment !== previous {
            count += 1
            previous = index.segment
        }
        return count
    }

    /// Marks the writer awake; returns whether the caller must signal it.
    mutating func wake() -> Bool {
        if writerSleeping {
            writerSleeping = false
            return true
        }
        return false
    }

    /// The index of the first run whose last sequence number is at least `sequence` (it may
    /// be empty, holding nothing: callers skip empty runs). An empty run's `lastSequence` is
    /// its base − 1, which keeps the predicate monotonic over runs in sequence order.
    func firstSegment(holdingAtLeast sequence: UInt64) -> Int {
        var low = 0
        var high = segments.count
        while low < high {
            let mid = (low + high) / 2
            if segments[mid].lastSequence < sequence { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Records and bytes held in `(after, upTo]`.
    func held(after: UInt64, upTo: UInt64) -> (count: Int, bytes: Int64) {
        var count = 0
        var bytes: Int64 = 0
        guard upTo > after else { return (0, 0) }
        var i = firstSegment(holdingAtLeast: after + 1)
        while i < segments.count {
            let index = segments[i]
            if index.baseSequence > upTo { break }
            if index.count > 0 {
                let from = max(after + 1, index.baseSequence)
                let to = min(upTo, index.lastSequence)
                if from <= to {
                    count += Int(to - from + 1)
                    bytes += index.bytes(from: from, to: to)
                }
            }
            i += 1
        }
        return (count, bytes)
    }

    /// Gaps in the sequence above the acknowledged mark (quarantined records).
    func missingRanges() -> [ClosedRange<UInt64>] {
        var ranges: [ClosedRange<UInt64>] = []
        var expected = acknowledgedUpTo + 1
        for index in segments {
            if index.count == 0 { continue }
            if index.lastSequence < expected { continue }
            if index.baseSequence > expected { ranges.append(expected...(index.baseSequence - 1)) }
            expected = index.lastSequence + 1
        }
        if nextSequence > expected { ranges.append(expected...(nextSequence - 1)) }
        return ranges
    }
}

/// The newest segment's file (its last run) and where its next record goes.
struct ActiveSegment {
    let segment: Segment
    /// The first sequence number of the file's last run.
    let baseSequence: UInt64
    let end: Int64
    let count: Int

    /// The sequence number the next record in this segment must have.
    var nextSequence: UInt64 { baseSequence + UInt64(count) }
}
