import CourierSpool

/// Records this node spooled in this run and has not sent yet, kept as `send` handed them
/// over, so that their first transmission needs no read from the spool (a `pread`, a decode,
/// a checksum and a copy per record). A contiguous run of numbers, bounded in count and
/// bytes; whatever it does not hold is read from the spool as before.
struct FreshRecords {
    private var records: [SpoolRecord] = []
    private var head = 0
    private var bytes = 0
    private let maxCount: Int
    private let maxBytes: Int

    init(maxCount: Int, maxBytes: Int) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
    }

    /// The first number held, if any.
    var first: UInt64? { head < records.count ? records[head].sequenceNumber : nil }

    /// Takes records made durable as `range`: kept if they continue the run and fit.
    mutating func add(_ range: ClosedRange<UInt64>, _ entries: [SpoolEntry], at wallClock: Int64) {
        guard entries.count == range.count else { return }
        if head == records.count {
            records.removeAll(keepingCapacity: true)
            head = 0
            bytes = 0
        } else if records[records.count - 1].sequenceNumber + 1 != range.lowerBound {
            return  // not contiguous (cannot happen with one writer; then the spool serves)
        }
        let added = entries.reduce(0) { $0 + $1.payload.count }
        guard records.count - head + entries.count <= maxCount, bytes + added <= maxBytes else { return }
        var sequence = range.lowerBound
        for entry in entries {
            records.append(SpoolRecord(sequenceNumber: sequence, enqueuedAt: wallClock, expiresAt: entry.expiresAt,
                                       attempt: entry.attempt, flags: entry.flags, headers: entry.headers, payload: entry.payload))
            sequence += 1
        }
        bytes += added
    }

    /// Up to `limit` records and about `maxBytes` of payload (at least one record) from
    /// `sequence` on, if the run starts exactly there.
    func records(from sequence: UInt64, limit: Int, maxBytes: Int) -> ArraySlice<SpoolRecord>? {
        guard first == sequence, limit > 0 else { return nil }
        var end = head
        var total = 0
        while end < records.count, end - head < limit, end == head || total + records[end].payload.count <= maxBytes {
            total += records[end].payload.count
            end += 1
        }
        return records[head..<end]
    }

    /// Forgets every number up to `mark` (sent, or finished).
    mutating func drop(through mark: UInt64) {
        while head < records.count, records[head].sequenceNumber <= mark {
            bytes -= records[head].payload.count
            head += 1
        }
        if head == records.count {
            records.removeAll(keepingCapacity: true)
            head = 0
            bytes = 0
        } else if head >= 4096, head * 2 >= records.count {
            records.removeFirst(head)
            head = 0
        }
    }
}
