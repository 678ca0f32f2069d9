import CourierSpool

/// The receiving side of one (sender, stream) as a state machine: the reorder buffer, what
/// has been handed out, the deduplication marks and what the sender is owed. It holds values
/// only (no socket, store, logger, clock or node): the caller — ``InboundSide`` on the I/O
/// thread, or a test — feeds it events (HELLO, DATA, the store finished, the application
/// settled, a timer) and carries out what it returns (frames to send, writes to make
/// durable, messages to hand out).
///
/// Invariants: messages are handed out in sequence order without gaps; a number is handed
/// out only at or below the durable reservation; an acknowledgement or outcome goes to the
/// sender only for numbers whose processed mark is durable.
struct ReceiverStream {
    enum Arrival {
        case message(payload: [UInt8], headers: [UInt8], attempt: UInt32)
        case tombstone
        case expired
    }

    /// A message to hand to the application.
    struct Delivery {
        var sequence: UInt64
        var payload: [UInt8]
        /// The message's header block (validated by the decoder; empty: none).
        var headers: [UInt8]
        var attempt: UInt32
        /// Possibly seen before a restart (at or below the reservation found at load).
        var redelivered: Bool
    }

    /// What a HELLO asks of the caller.
    enum HelloAction: Equatable {
        /// Send these frames, in order: the verdicts the sender may not have heard (OUTCOMES),
        /// then the WELCOME.
        case answer([[UInt8]])
        /// Record the stream's start (or the sender's progress, every number up to
        /// `processedUpTo` finished) durably, then call ``ReceiverStream/startRecorded()``
        /// and send the WELCOMEs it returns.
        case recordStart(processedUpTo: UInt64)
    }

    /// What one DATA frame held besides new numbers (for the counters).
    struct ArrivalCounts: Equatable {
        var duplicates = 0
        var beyondWindow = 0
    }

    /// What this receiver announces in a version-2 WELCOME.
    struct Limits: Equatable {
        var window: UInt32
        var maxMessageSize: UInt32
    }

    let sender: String
    let stream: UInt64
    /// The limits this receiver keeps to (its window, its maximum message size).
    var limits = Limits(window: 8192, maxMessageSize: 1 << 20)
    /// The protocol version of the sender's last HELLO: every frame back is written in it.
    private(set) var version: UInt8 = 1
    /// The nonce of the sender's last HELLO (version 2), echoed by the WELCOME.
    private var helloNonce: UInt64 = 0
    /// Whether the store holds a record of this stream (WELCOME may be sent).
    private(set) var ready: Bool
    /// HELLOs waiting for the stream's record to be durable: each gets its WELCOME (a
    /// version-1 sender counts answers, docs/PROTOCOL.md "Sender behaviour"; a version-2
    /// sender needs only the answer to its last).
    private var welcomesOwed = 0

    /// Durable: every number up to here is processed.
    private(set) var processedUpTo: UInt64
    /// Durable: processed numbers above `processedUpTo`.
    private(set) var processedAbove: SequenceSet
    /// Durable: numbers up to here may have been handed out.
    private var reservedUpTo: UInt64
    /// The reservation found at load: unprocessed numbers at or below it were possibly seen.
    private let redeliverUpTo: UInt64
    /// Handed to the application (or finished internally) up to here.
    private var deliveredUpTo: UInt64
    private var buffer = SequenceTable<Arrival>()
    private var reservationRequested: UInt64 = 0
    /// Settled by the application, being made durable.
    private var settling = SequenceSet()
    /// Settled and durable, with the verdict to tell the sender (nil: processed).
    private var toMark: [UInt64] = []
    /// Verdicts other than processed (rejected, expired on arrival), kept until the sender
    /// says it finished their numbers (a HELLO's first unacknowledged number passes them):
    /// each answer to a HELLO repeats those that are durable, before its WELCOME, so a
    /// sender never learns a number is finished without its verdict. At most
    /// ``maxRetainedVerdicts``; beyond that the oldest are forgotten.
    /// In number order: they are settled almost always in order and let go of from the
    /// front, and the answers to a HELLO list them in order.
    private var verdicts = OrderedNumberMap<WireFrame.OutcomeEntry>()
    private var outcomesToSend: [WireFrame.OutcomeEntry] = []
    /// The outcomes of the last ``dueFrames(now:)``, until the caller says whether they went.
    private var outcomesInFlight: [WireFrame.OutcomeEntry] = []
    static let maxRetainedVerdicts = 100_000
    private var unacknowledged = 0
    private var ackDue: ContinuousClock.Instant?
    private var ackNow = false
    /// New arrivals that no acknowledgement has covered yet are acknowledged as received
    /// by then.
    private var receiptDue: ContinuousClock.Instant?

    /// A stream as the store holds it (nil: new), with the verdicts it keeps for the sender
    /// and, when known (a restart on the same boot), the highest number the application
    /// really took: only numbers up to it come back flagged `redelivered`, not those the
    /// reservation covered while they waited in the library's queue.
    init(sender: String, stream: UInt64, stored: InboundStreamState?, verdicts storedVerdicts: [UInt64: InboundVerdict] = [:],
         taken: UInt64? = nil) {
        self.sender = sender
        self.stream = stream
        self.ready = stored != nil
        processedUpTo = stored?.processedUpTo ?? 0
        processedAbove = SequenceSet(stored?.processedAbove ?? [])
        reservedUpTo = stored?.reservedUpTo ?? 0
        let reserved = stored?.reservedUpTo ?? 0
        redeliverUpTo = taken.map { min(reserved, max($0, stored?.processedUpTo ?? 0)) } ?? reserved
        deliveredUpTo = processedUpTo
        for (sequence, verdict) in storedVerdicts.sorted(by: { $0.key < $1.key }) {
            guard let code = WireFrame.OutcomeCode(rawValue: verdict.code) else { continue }
            verdicts.record(WireFrame.OutcomeEntry(sequence: sequence, code: code, reason: verdict.reason), for: sequence)
        }
    }

    /// Where the stream stands, for WELCOME and ACK.
    var receivedUpTo: UInt64 {
        var mark = deliveredUpTo
        while buffer[mark + 1] != nil || processedAbove.contains(mark + 1) || settling.contains(mark + 1) { mark += 1 }
        return mark
    }

    // MARK: HELLO

    /// A HELLO: the sender finished every number below `firstUnacknowledged`. `nonce`: the
    /// HELLO's (version 2), nil for a version-1 HELLO; the answers are written in its version.
    mutating func hello(firstUnacknowledged: UInt64, nonce: UInt64? = nil) -> HelloAction {
        version = nonce == nil ? 1 : 2
        helloNonce = nonce ?? 0
        let mark = firstUnacknowledged - 1
        senderAway = false
        verdicts.removeFirst(upTo: mark)  // the sender has them
        guard ready, processedUpTo >= mark else {
            welcomesOwed += 1
            advance(to: mark)
            return .recordStart(processedUpTo: mark)
        }
        return .answer(retainedOutcomeFrames() + [welcomeFrame()])
    }

    /// Whether a verdict at or below `mark` is still kept (a HELLO with that mark lets it go).
    func keepsVerdicts(upTo mark: UInt64) -> Bool {
        verdicts.first.map { $0.number <= mark } ?? false
    }

    /// The stream's start is durable: the frames owed to the HELLOs that waited for it (one
    /// WELCOME each, after the retained verdicts).
    mutating func startRecorded() -> [[UInt8]] {
        ready = true
        defer { welcomesOwed = 0 }
        guard welcomesOwed > 0 else { return [] }
        return retainedOutcomeFrames() + Array(repeating: welcomeFrame(), count: version >= 2 ? 1 : welcomesOwed)
    }

    /// OUTCOMES frames with every retained verdict whose processed mark is durable; what was
    /// waiting to go goes with them.
    /// If the answer cannot go, ``dueFramesNotSent(senderConnected:)`` puts them back.
    private mutating func retainedOutcomeFrames() -> [[UInt8]] {
        outcomesToSend.removeAll()
        var durable: [WireFrame.OutcomeEntry] = []
        verdicts.forEach { sequence, verdict in
            if sequence <= processedUpTo || processedAbove.contains(sequence) { durable.append(verdict) }
        }
        outcomesInFlight = durable
        return outcomeFrames(outcomesInFlight)
    }

    private func outcomeFrames(_ entries: [WireFrame.OutcomeEntry]) -> [[UInt8]] {
        stride(from: 0, to: entries.count, by: Wire.maxOutcomesPerFrame).map { chunk in
            let part = Array(entries[chunk..<min(chunk + Wire.maxOutcomesPerFrame, entries.count)])
            return WireEncoder.encode(.outcomes(.init(stream: stream, entries: part)), version: version)
        }
    }

    /// The sender finished every number up to `mark`: move up to it.
    private mutating func advance(to mark: UInt64) {
        guard mark > processedUpTo else { return }
        processedUpTo = mark
        processedAbove.removeAll { $0 <= mark }
        deliveredUpTo = max(deliveredUpTo, mark)
        buffer.removeAll { $0 <= mark }
    }

    // MARK: Arrivals

    /// Takes the records of one DATA frame. A duplicate of a finished number makes an
    /// acknowledgement due at once; new arrivals make one due by `receiptDue` (`now` +
    /// ``AckCoalescing/receiptDelay``) unless an acknowledgement goes out before.
    mutating func receive(_ records: [WireFrame.DataRecord], window: Int, wall: Int64, now: ContinuousClock.Instant,
                          coalescing: AckCoalescing) -> ArrivalCounts {
        var counts = ArrivalCounts()
        let limit = processedUpTo + UInt64(window)
        if receiptDue == nil { receiptDue = now + coalescing.receiptDelay }
        for record in records {
            let sequence = record.sequence
            if sequence <= deliveredUpTo || processedAbove.contains(sequence) || settling.contains(sequence) || buffer[sequence] != nil {
                counts.duplicates += 1
                if sequence <= processedUpTo || processedAbove.contains(sequence) {
                    ackNow = true
                    if let verdict = verdicts[sequence] { outcomesToSend.append(verdict) }
                }
                continue
            }
            guard sequence <= limit else {
                counts.beyondWindow += 1
                continue
            }
            if record.isTombstone {
                buffer[sequence] = .tombstone
            } else if record.expiry != 0 && record.expiry < wall {
                buffer[sequence] = .expired
            } else {
                buffer[sequence] = .message(payload: Array(record.payload), headers: record.headers.isEmpty ? [] : Array(record.headers),
                                            attempt: record.attempt)
            }
        }
        return counts
    }

    /// Hands out what is in order and reserved, one by one to `deliver`. Returns, when more
    /// must be reserved first, the mark to reserve durably up to (then call
    /// ``reserved(upTo:)`` and hand out again).
    mutating func handOut(window: Int, deliver: (Delivery) -> Void) -> UInt64? {
        while true {
            let sequence = deliveredUpTo + 1
            if processedAbove.contains(sequence) || settling.contains(sequence) {
                deliveredUpTo = sequence
                buffer[sequence] = nil
                continue
            }
            guard let arrival = buffer[sequence] else { break }
            switch arrival {
            case .tombstone:
                settle(sequence, verdict: nil)
            case .expired:
                settle(sequence, verdict: .init(sequence: sequence, code: .expired, reason: "expired on arrival"))
            case .message(let payload, let headers, let attempt):
                guard sequence <= reservedUpTo else {
                    // Reserve exactly what is ready to go out now, so that after a crash only
                    // messages that really may have been seen come back flagged.
                    guard reservationRequested < sequence else { return nil }
                    var target = sequence
                    while buffer[target + 1] != nil, target < sequence + UInt64(max(window, 1)) { target += 1 }
                    reservationRequested = target
                    return target
                }
                deliver(Delivery(sequence: sequence, payload: payload, headers: headers, attempt: attempt,
                                 redelivered: sequence <= redeliverUpTo))
            }
            buffer[sequence] = nil
            deliveredUpTo = sequence
        }
        return nil
    }

    /// The store made the reservation durable.
    mutating func reserved(upTo mark: UInt64) {
        reservedUpTo = max(reservedUpTo, mark)
    }

    // MARK: Settling

    /// The application finished `sequence` (verdict nil: processed). Returns false when the
    /// number was settled before (a second acknowledgement changes nothing).
    @discardableResult
    mutating func settle(_ sequence: UInt64, verdict: WireFrame.OutcomeEntry?) -> Bool {
        guard sequence > processedUpTo, sequence <= deliveredUpTo + 1, !processedAbove.contains(sequence),
              settling.insert(sequence) else { return false }
        if let verdict { verdicts.record(verdict, for: sequence) }
        toMark.append(sequence)
        return true
    }

    /// Numbers to make durable now (taken: the caller submits them to the store).
    mutating func takeMarks() -> [UInt64] {
        defer { toMark.removeAll() }
        return toMark
    }

    /// The verdicts other than processed among `marks` (from ``takeMarks()``): the store
    /// makes them durable with the marks, and keeps them until the sender has heard them.
    func verdicts(among marks: [UInt64]) -> [UInt64: InboundVerdict] {
        guard !verdicts.isEmpty else { return [:] }
        var found: [UInt64: InboundVerdict] = [:]
        for sequence in marks {
            if let entry = verdicts[sequence] { found[sequence] = InboundVerdict(code: entry.code.rawValue, reason: entry.reason) }
        }
        return found
    }

    /// The store made these processed marks durable.
    mutating func marked(_ sequences: [UInt64], coalescing: AckCoalescing, now: ContinuousClock.Instant) {
        for sequence in sequences where settling.remove(sequence) {
            if sequence == processedUpTo + 1 {
                processedUpTo = sequence
                while !processedAbove.isEmpty, processedAbove.remove(processedUpTo + 1) { processedUpTo += 1 }
            } else if sequence > processedUpTo {
                processedAbove.insert(sequence)
            }
            if !verdicts.isEmpty, let verdict = verdicts[sequence] { outcomesToSend.append(verdict) }
        }
        if verdicts.count > Self.maxRetainedVerdicts {
            // The oldest durable ones go (a sender that confirms, as Courier's do every
            // 200 ms, never lets it come to this); those still settling stay.
            while verdicts.count > Self.maxRetainedVerdicts / 2, let oldest = verdicts.first, oldest.number <= processedUpTo {
                verdicts.removeFirst()
            }
        }
        unacknowledged += sequences.count
        if unacknowledged >= coalescing.count || !outcomesToSend.isEmpty {
            ackNow = true
        } else if ackDue == nil {
            ackDue = now + coalescing.delay
        }
    }

    /// The frames to send the sender now (outcomes first, then the acknowledgement), if due.
    mutating func dueFrames(now: ContinuousClock.Instant) -> [[UInt8]] {
        guard ready, ackNow || (ackDue.map { now >= $0 } ?? false) || (receiptDue.map { now >= $0 } ?? false) else { return [] }
        var frames: [[UInt8]] = []
        outcomesInFlight = outcomesToSend
        if !outcomesToSend.isEmpty {
            frames = outcomeFrames(outcomesToSend)
            outcomesToSend.removeAll()
        }
        frames.append(ackFrame())
        ackNow = false
        ackDue = nil
        receiptDue = nil
        unacknowledged = 0
        senderAway = false
        return frames
    }

    /// The frames of the last ``dueFrames(now:)`` could not all be queued: they go again,
    /// outcomes first, at the next flush, so that no later ACK goes without the OUTCOMES that
    /// belong before it. `senderConnected` false: the sender is not connected (a shutdown
    /// need not wait for it; its next HELLO is answered with everything it lacks).
    mutating func dueFramesNotSent(senderConnected: Bool) {
        outcomesToSend = outcomesInFlight + outcomesToSend
        outcomesInFlight = []
        // A full queue: at the next flush. Away: with the next ACK that falls due, or in the
        // answer to its next HELLO.
        ackNow = senderConnected
        senderAway = !senderConnected
    }

    /// A shutdown is lowering the durable reservation.
    private(set) var loweringReservation = false

    /// The sender was not connected when frames were last owed to it.
    private var senderAway = false

    /// Whether every settled number is recorded and acknowledged (or owed to a sender that is
    /// not connected).
    var isQuiet: Bool {
        settling.isEmpty && toMark.isEmpty && !loweringReservation
            && (senderAway || (outcomesToSend.isEmpty && unacknowledged == 0 && !ackNow))
    }

    /// A shutdown: the reservation to lower to, given the highest number the application
    /// took (nil: nothing to lower; else call ``reservationLowered()`` once it is durable).
    /// Numbers possibly seen before this run stay reserved.
    mutating func lowerReservation(taken: UInt64?) -> UInt64? {
        let keep = max(processedUpTo, taken ?? 0, redeliverUpTo)
        guard max(reservedUpTo, reservationRequested) > keep else { return nil }
        loweringReservation = true
        return keep
    }

    mutating func reservationLowered() {
        loweringReservation = false
    }

    /// Drops the coalescing delay for what is owed.
    mutating func acknowledgeNow() {
        if unacknowledged > 0 || !outcomesToSend.isEmpty { ackNow = true }
    }

    /// When the next coalesced or receipt acknowledgement is due.
    var nextDeadline: ContinuousClock.Instant? {
        guard let receiptDue else { return ackDue }
        return min(ackDue ?? receiptDue, receiptDue)
    }

    private func welcomeFrame() -> [UInt8] {
        let received = max(receivedUpTo, processedUpTo)
        let answer = version >= 2
            ? WireFrame.Answer(nonce: helloNonce, window: limits.window, maxMessageSize: limits.maxMessageSize, receivedRanges: heldRanges(above: received))
            : nil
        return WireEncoder.encode(.welcome(.init(stream: stream, processedUpTo: processedUpTo, receivedUpTo: received, answer: answer)),
                                  version: version)
    }

    /// What arrived beyond the first gap above `mark`, as ranges (at most ``Wire/maxRanges``,
    /// the lowest first): a version-2 sender resends only what they leave out.
    private func heldRanges(above mark: UInt64) -> [ClosedRange<UInt64>] {
        guard !buffer.isEmpty else { return [] }
        var ranges: [ClosedRange<UInt64>] = []
        for sequence in buffer.sortedKeys() where sequence > mark + 1 {
            if let last = ranges.last, last.upperBound + 1 == sequence {
                ranges[ranges.count - 1] = last.lowerBound...sequence
            } else {
                guard ranges.count < Wire.maxRanges else { break }
                ranges.append(sequence...sequence)
            }
        }
        return ranges
    }

    private func ackFrame() -> [UInt8] {
        var ranges: [ClosedRange<UInt64>] = []
        for sequence in processedAbove.sorted() {
            if let last = ranges.last, last.upperBound + 1 == sequence {
                ranges[ranges.count - 1] = last.lowerBound...sequence
            } else {
                guard ranges.count < Wire.maxRanges else { break }
                ranges.append(sequence...sequence)
            }
        }
        return WireEncoder.encode(.ack(.init(stream: stream, processedUpTo: processedUpTo,
                                             receivedUpTo: max(receivedUpTo, processedUpTo), processedRanges: ranges)), version: version)
    }
}
