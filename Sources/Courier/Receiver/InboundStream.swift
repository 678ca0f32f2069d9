import CoreMetrics
import CourierSpool
import ZeroMQ

/// The receiving side of one (sender, stream), owned by the I/O thread: the reorder
/// buffer, what has been handed out, and the durable deduplication marks.
///
/// Invariants: messages are handed out in sequence order without gaps; a number is handed
/// out only at or below the durable reservation; an acknowledgement or outcome goes to the
/// sender only for numbers whose processed mark is durable.
///
/// The per-message state is `@exclusivity(unchecked)`: each touch of a class's stored
/// property otherwise pays a runtime exclusivity check, several per message; those checks
/// were about 14 % of the receiving I/O thread's samples, and switching them off cut its CPU
/// by a sixth (docs/PERFORMANCE.md). Accesses to these properties are then not checked at
/// all, so the rule is kept by hand: only the I/O thread ever touches a stream, and no
/// access overlaps another (no closure given to a mutation of a property reads or writes
/// that property, no property is passed `inout` while another access to it is live).
/// tools/test builds and runs CourierTests once more with the attribute removed, so that the
/// runtime checks would catch a change that breaks the rule on a tested path.
final class InboundStream {
    enum Arrival {
        case message(payload: [UInt8], attempt: UInt32)
        case tombstone
        case expired
    }

    let sender: String
    let stream: UInt64
    /// Whether the store holds a record of this stream (WELCOME may be sent).
    var ready: Bool
    /// HELLOs waiting for the stream's record to be durable: each gets its WELCOME (the
    /// sender counts answers, docs/PROTOCOL.md "Sender behaviour").
    var welcomesOwed = 0
    /// When the sender last said HELLO on this stream (retirement picks the oldest).
    var lastHello = ContinuousClock.now

    /// Durable: every number up to here is processed.
    @exclusivity(unchecked) private(set) var processedUpTo: UInt64
    /// Durable: processed numbers above `processedUpTo`.
    @exclusivity(unchecked) private(set) var processedAbove: SequenceSet
    /// Durable: numbers up to here may have been handed out.
    @exclusivity(unchecked) private var reservedUpTo: UInt64
    /// The reservation found at load: unprocessed numbers at or below it were possibly seen.
    private let redeliverUpTo: UInt64
    /// Handed to the application (or finished internally) up to here.
    @exclusivity(unchecked) private var deliveredUpTo: UInt64
    @exclusivity(unchecked) private var buffer = SequenceTable<Arrival>()
    @exclusivity(unchecked) private var reservationRequested: UInt64 = 0
    /// Settled by the application, being made durable.
    @exclusivity(unchecked) private var settling = SequenceSet()
    /// Settled and durable, with the verdict to tell the sender (nil: processed).
    @exclusivity(unchecked) private var toMark: [UInt64] = []
    @exclusivity(unchecked) private var verdicts: [UInt64: WireFrame.OutcomeEntry] = [:]
    @exclusivity(unchecked) private var outcomesToSend: [WireFrame.OutcomeEntry] = []
    @exclusivity(unchecked) private var unacknowledged = 0
    @exclusivity(unchecked) private var ackDue: ContinuousClock.Instant?
    @exclusivity(unchecked) private var ackNow = false
    /// New arrivals that no acknowledgement has covered yet are acknowledged as received
    /// by then.
    @exclusivity(unchecked) private var receiptDue: ContinuousClock.Instant?

    init(sender: String, stream: UInt64, stored: InboundStreamState?) {
        self.sender = sender
        self.stream = stream
        self.ready = stored != nil
        processedUpTo = stored?.processedUpTo ?? 0
        processedAbove = SequenceSet(stored?.processedAbove ?? [])
        reservedUpTo = stored?.reservedUpTo ?? 0
        redeliverUpTo = stored?.reservedUpTo ?? 0
        deliveredUpTo = processedUpTo
    }

    /// Where the stream stands, for WELCOME and ACK.
    var receivedUpTo: UInt64 {
        var mark = deliveredUpTo
        while buffer[mark + 1] != nil || processedAbove.contains(mark + 1) || settling.contains(mark + 1) { mark += 1 }
        return mark
    }

    /// The sender finished every number below `first` (a HELLO said so): move up to it.
    func advance(to mark: UInt64) {
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
    func receive(_ records: [WireFrame.DataRecord], window: Int, wall: Int64, now: ContinuousClock.Instant,
                 coalescing: AckCoalescing, metrics: NodeMetrics) {
        let limit = processedUpTo + UInt64(window)
        if receiptDue == nil { receiptDue = now + coalescing.receiptDelay }
        for record in records {
            let sequence = record.sequence
            if sequence <= deliveredUpTo || processedAbove.contains(sequence) || settling.contains(sequence) || buffer[sequence] != nil {
                metrics.duplicates.increment()
                if sequence <= processedUpTo || processedAbove.contains(sequence) {
                    ackNow = true
                    if let verdict = verdicts[sequence] { outcomesToSend.append(verdict) }
                }
                continue
            }
            guard sequence <= limit else {
                metrics.beyondWindow.increment()
                continue
            }
            if record.isTombstone {
                buffer[sequence] = .tombstone
            } else if record.expiry != 0 && record.expiry < wall {
                buffer[sequence] = .expired
            } else {
                buffer[sequence] = .message(payload: Array(record.payload), attempt: record.attempt)
            }
        }
    }

    /// Hands out what is in order and reserved, appending it to `messages`. Returns, when
    /// more must be reserved first, the mark to reserve up to.
    func handOut(window: Int, core: NodeCore, into messages: inout [IncomingMessage]) -> UInt64? {
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
            case .message(let payload, let attempt):
                guard sequence <= reservedUpTo else {
                    // Reserve exactly what is ready to go out now, so that after a crash only
                    // messages that really may have been seen come back flagged.
                    guard reservationRequested < sequence else { return nil }
                    var target = sequence
                    while buffer[target + 1] != nil, target < sequence + UInt64(max(window, 1)) { target += 1 }
                    reservationRequested = target
                    return target
                }
                messages.append(IncomingMessage(
                    sender: sender, stream: stream, sequence: sequence,
                    redelivered: sequence <= redeliverUpTo, attempt: Int(attempt), payload: payload, core: core))
            }
            buffer[sequence] = nil
            deliveredUpTo = sequence
        }
        return nil
    }

    /// The store made the reservation durable.
    func reserved(upTo mark: UInt64) {
        reservedUpTo = max(reservedUpTo, mark)
    }

    // MARK: Settling

    /// The application finished `sequence` (verdict nil: processed). Returns false when the
    /// number was settled before (a second acknowledgement changes nothing).
    @discardableResult
    func settle(_ sequence: UInt64, verdict: WireFrame.OutcomeEntry?) -> Bool {
        guard sequence > processedUpTo, sequence <= deliveredUpTo + 1, !processedAbove.contains(sequence),
              settling.insert(sequence) else { return false }
        if let verdict { verdicts[sequence] = verdict }
        toMark.append(sequence)
        return true
    }

    /// Numbers to make durable now (taken: the caller submits them to the store).
    func takeMarks() -> [UInt64] {
        defer { toMark.removeAll() }
        return toMark
    }

    /// The store made these processed marks durable.
    func marked(_ sequences: [UInt64], coalescing: AckCoalescing, now: ContinuousClock.Instant) {
        for sequence in sequences where settling.remove(sequence) {
            if sequence == processedUpTo + 1 {
                processedUpTo = sequence
                while !processedAbove.isEmpty, processedAbove.remove(processedUpTo + 1) { processedUpTo += 1 }
            } else if sequence > processedUpTo {
                processedAbove.insert(sequence)
            }
            if !verdicts.isEmpty, let verdict = verdicts[sequence] { outcomesToSend.append(verdict) }
        }
        if verdicts.count > 4096 { verdicts = verdicts.filter { $0.key > processedUpTo } }
        unacknowledged += sequences.count
        if unacknowledged >= coalescing.count || !outcomesToSend.isEmpty {
            ackNow = true
        } else if ackDue == nil {
            ackDue = now + coalescing.delay
        }
    }

    /// The frames to send the sender now (outcomes first, then the acknowledgement), if due.
    func dueFrames(now: ContinuousClock.Instant) -> [[UInt8]] {
        guard ready, ackNow || (ackDue.map { now >= $0 } ?? false) || (receiptDue.map { now >= $0 } ?? false) else { return [] }
        var frames: [[UInt8]] = []
        if !outcomesToSend.isEmpty {
            for chunk in stride(from: 0, to: outcomesToSend.count, by: Wire.maxOutcomesPerFrame) {
                let entries = Array(outcomesToSend[chunk..<min(chunk + Wire.maxOutcomesPerFrame, outcomesToSend.count)])
                frames.append(WireEncoder.encode(.outcomes(.init(stream: stream, entries: entries))))
            }
            outcomesToSend.removeAll()
        }
        frames.append(ackFrame())
        ackNow = false
        ackDue = nil
        receiptDue = nil
        unacknowledged = 0
        return frames
    }

    /// A shutdown is lowering the durable reservation.
    var loweringReservation = false

    /// Whether every settled number is recorded and acknowledged.
    var isQuiet: Bool {
        settling.isEmpty && toMark.isEmpty && outcomesToSend.isEmpty && unacknowledged == 0 && !ackNow && !loweringReservation
    }

    /// The reservation to keep at shutdown, given the highest number the application took
    /// (nil: nothing to lower). Numbers possibly seen before this run stay reserved.
    func reservationToKeep(taken: UInt64?) -> UInt64? {
        let keep = max(processedUpTo, taken ?? 0, redeliverUpTo)
        return max(reservedUpTo, reservationRequested) > keep ? keep : nil
    }

    /// Drops the coalescing delay for what is owed.
    func acknowledgeNow() {
        if unacknowledged > 0 || !outcomesToSend.isEmpty { ackNow = true }
    }

    /// When the next coalesced or receipt acknowledgement is due.
    var nextDeadline: ContinuousClock.Instant? {
        guard let receiptDue else { return ackDue }
        return min(ackDue ?? receiptDue, receiptDue)
    }

    func welcomeFrame() -> [UInt8] {
        WireEncoder.encode(.welcome(.init(stream: stream, processedUpTo: processedUpTo, receivedUpTo: max(receivedUpTo, processedUpTo))))
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
                                             receivedUpTo: max(receivedUpTo, processedUpTo), processedRanges: ranges)))
    }
}
