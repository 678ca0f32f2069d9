/// Where a dead letter's record is in `deadletters.log`.
struct LetterLocation {
    var offset: Int64
    var length: Int
}

/// Where each live dead letter is, by id. Ids are given out consecutively, so the index
/// is an array from the oldest live id on (16 bytes a letter, no hashing); removed letters
/// leave a hole until the holes at the front are dropped. An id far outside that run (only
/// a damaged or crafted file has one: the file is not trusted to keep ids close) goes to a
/// dictionary instead, so that no id can make the array grow without bound.
struct LetterIndex {
    /// The id of `slots[head]`.
    private var firstID: UInt64 = 0
    private var slots: [LetterLocation?] = []
    private var head = 0
    private var dense = 0
    private var outliers: [UInt64: LetterLocation] = [:]
    /// How far beyond the run an id may be and still extend it.
    private static let reach: UInt64 = 1 << 16

    var count: Int { dense + outliers.count }

    subscript(id: UInt64) -> LetterLocation? {
        get {
            if let index = slot(of: id) { return slots[index] }
            return outliers.isEmpty ? nil : outliers[id]
        }
        set {
            if let location = newValue { insert(location, id: id) } else { remove(id) }
        }
    }

    /// Every live letter in id order.
    var sorted: [(id: UInt64, location: LetterLocation)] {
        var result: [(id: UInt64, location: LetterLocation)] = []
        result.reserveCapacity(count)
        for index in head..<slots.count {
            if let location = slots[index] { result.append((firstID + UInt64(index - head), location)) }
        }
        if !outliers.isEmpty {
            result += outliers.map { (id: $0.key, location: $0.value) }
            result.sort { $0.id < $1.id }
        }
        return result
    }

    private func slot(of id: UInt64) -> Int? {
        guard id >= firstID, id - firstID < UInt64(slots.count - head) else { return nil }
        return head + Int(id - firstID)
    }

    private mutating func insert(_ location: LetterLocation, id: UInt64) {
        if outliers[id] != nil {
            outliers[id] = location
            return
        }
        let run = UInt64(slots.count - head)
        if dense == 0 {
            slots.removeAll(keepingCapacity: true)
            head = 0
            firstID = id
        } else if id < firstID {
            // Older than every letter held (only when a file lists ids out of order).
            guard firstID - id <= Self.reach else {
                outliers[id] = location
                return
            }
            slots.replaceSubrange(head..<head, with: repeatElement(nil, count: Int(firstID - id)))
            firstID = id
        } else if id - firstID >= run + Self.reach {
            outliers[id] = location
            return
        }
        let index = head + Int(id - firstID)
        if index >= slots.count { slots.append(contentsOf: repeatElement(nil, count: index - slots.count + 1)) }
        if slots[index] == nil { dense += 1 }
        slots[index] = location
    }

    private mutating func remove(_ id: UInt64) {
        guard let index = slot(of: id), slots[index] != nil else {
            outliers[id] = nil
            return
        }
        slots[index] = nil
        dense -= 1
        // Drop the holes at the front, so that memory follows the letters held.
        while head < slots.count, slots[head] == nil {
            head += 1
            firstID += 1
        }
        if head > 1_024, head * 2 > slots.count {
            slots.removeFirst(head)
            head = 0
        }
    }
}

/// The outcome of every number ever dead-lettered, by stream and sequence number: per
/// stream, the numbers in increasing order beside an index into the distinct reasons
/// (12 bytes a number; a reason's text is kept once however many numbers share it).
struct OutcomeIndex {
    /// Per stream, each number's index into `reasons`.
    private var streams: [UInt64: OrderedNumberMap<UInt32>] = [:]
    private var reasons: [DeadLetterReason] = []
    private var reasonIDs: [DeadLetterReason: UInt32] = [:]
    /// The reason recorded last: the next one is most often the same.
    private var lastReason: (reason: DeadLetterReason, id: UInt32)?

    /// Records `reason` as the outcome of `sequence` on `stream` (replacing one recorded
    /// before for it).
    mutating func record(_ reason: DeadLetterReason, stream: UInt64, sequence: UInt64) {
        let id = identifier(of: reason)
        streams[stream, default: OrderedNumberMap()].record(id, for: sequence)
    }

    /// The outcome recorded for `sequence` on `stream`, if any.
    func reason(stream: UInt64, sequence: UInt64) -> DeadLetterReason? {
        streams[stream]?[sequence].map { reasons[Int($0)] }
    }

    /// Every outcome recorded on `stream`.
    func all(stream: UInt64) -> [UInt64: DeadLetterReason] {
        guard let entry = streams[stream] else { return [:] }
        var result: [UInt64: DeadLetterReason] = [:]
        result.reserveCapacity(entry.count)
        entry.forEach { sequence, id in result[sequence] = reasons[Int(id)] }
        return result
    }

    private mutating func identifier(of reason: DeadLetterReason) -> UInt32 {
        if let last = lastReason, last.reason == reason { return last.id }
        let id: UInt32
        if let known = reasonIDs[reason] {
            id = known
        } else {
            id = UInt32(reasons.count)
            reasons.append(reason)
            reasonIDs[reason] = id
        }
        lastReason = (reason, id)
        return id
    }
}
