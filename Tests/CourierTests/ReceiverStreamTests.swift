import CourierSpool
import Testing
@testable import Courier

/// Unit tests of ``ReceiverStream``, one transition at a time, without sockets or a store:
/// the test plays the executor (``InboundSide``) and the store.
@Suite("Receiver stream machine")
struct ReceiverStreamTests {
    let t0 = ContinuousClock.now
    let stream: UInt64 = 0x5717
    let sender = "alpha"

    // MARK: Helpers

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { t0 + .milliseconds(milliseconds) }

    /// No coalescing delay, no count threshold to speak of, and a long receipt delay, unless
    /// a test says otherwise.
    func coalescing(count: Int = 1_000, delay: Duration = .zero, receipt: Duration = .seconds(60)) -> AckCoalescing {
        var coalescing = AckCoalescing()
        coalescing.count = count
        coalescing.delay = delay
        coalescing.receiptDelay = receipt
        return coalescing
    }

    func machine(stored: InboundStreamState? = nil) -> ReceiverStream {
        ReceiverStream(sender: sender, stream: stream, stored: stored)
    }

    /// A stream whose record exists (processed up to `processed`).
    func ready(processed: UInt64 = 0, above: Set<UInt64> = [], reserved: UInt64 = 0) -> ReceiverStream {
        machine(stored: InboundStreamState(sender: sender, streamID: stream, processedUpTo: processed, processedAbove: above, reservedUpTo: max(reserved, processed)))
    }

    func message(_ sequence: UInt64, attempt: UInt32 = 1, expiry: Int64 = 0) -> WireFrame.DataRecord {
        .init(sequence: sequence, attempt: attempt, isTombstone: false, expiry: expiry, payload: Array("m\(sequence)".utf8)[...])
    }

    func tombstone(_ sequence: UInt64) -> WireFrame.DataRecord {
        .init(sequence: sequence, attempt: 2, isTombstone: true, expiry: 0, payload: [])
    }

    func decode(_ frames: [[UInt8]]) throws -> [WireFrame] {
        let decoder = WireDecoder(maxPayloadSize: 1 << 20)
        return try frames.map { try decoder.decode($0) }
    }

    func ack(processed: UInt64, received: UInt64, ranges: [ClosedRange<UInt64>] = []) -> WireFrame {
        .ack(.init(stream: stream, processedUpTo: processed, receivedUpTo: received, processedRanges: ranges))
    }

    /// Hands out everything possible, reserving (at once, as a store that hands out before
    /// its sync does) whenever asked. Returns the deliveries and the reservations asked.
    func handOutReserving(_ machine: inout ReceiverStream, window: Int = 16) -> (delivered: [ReceiverStream.Delivery], reservations: [UInt64]) {
        var delivered: [ReceiverStream.Delivery] = []
        var reservations: [UInt64] = []
        while let mark = machine.handOut(window: window, deliver: { delivered.append($0) }) {
            reservations.append(mark)
            machine.reserved(upTo: mark)
        }
        return (delivered, reservations)
    }

    @discardableResult
    func receive(_ machine: inout ReceiverStream, _ records: [WireFrame.DataRecord], window: Int = 16, wall: Int64 = 1_000,
                 now: ContinuousClock.Instant? = nil, coalescing: AckCoalescing? = nil) -> ReceiverStream.ArrivalCounts {
        machine.receive(records, window: window, wall: wall, now: now ?? t0, coalescing: coalescing ?? self.coalescing())
    }

    // MARK: HELLO

    @Test("HELLO on a new stream: record the start first; every HELLO waiting gets its WELCOME once it is durable")
    func helloOnNewStream() throws {
        var machine = machine()
        #expect(!machine.ready)
        #expect(machine.hello(firstUnacknowledged: 4) == .recordStart(processedUpTo: 3))
        #expect(machine.hello(firstUnacknowledged: 4) == .recordStart(processedUpTo: 3))
        #expect(machine.processedUpTo == 3)
        // Not ready: nothing goes to the sender, whatever is due.
        receive(&machine, [message(4)], coalescing: coalescing(receipt: .zero))
        #expect(machine.dueFrames(now: at(100)).isEmpty)

        let welcomes = try decode(machine.startRecorded())
        let expected = WireFrame.welcome(.init(stream: stream, processedUpTo: 3, receivedUpTo: 4))
        #expect(welcomes == [expected, expected], "one WELCOME per HELLO")
        #expect(machine.ready)
        #expect(machine.startRecorded().isEmpty, "owed once")
        // Now HELLO is answered at once.
        guard case .answer(let frames) = machine.hello(firstUnacknowledged: 4) else {
            Issue.record("expected a WELCOME")
            return
        }
        #expect(try decode(frames) == [expected])
    }

    @Test("HELLO on a known stream: WELCOME at once, unless the sender finished more than the record says")
    func helloOnKnownStream() throws {
        var machine = ready(processed: 5)
        guard case .answer(let frames) = machine.hello(firstUnacknowledged: 3) else {
            Issue.record("expected a WELCOME")
            return
        }
        #expect(try decode(frames) == [.welcome(.init(stream: stream, processedUpTo: 5, receivedUpTo: 5))])
        // The sender finished up to 9: move up, durably, before answering.
        #expect(machine.hello(firstUnacknowledged: 10) == .recordStart(processedUpTo: 9))
        #expect(machine.processedUpTo == 9)
        #expect(try decode(machine.startRecorded()) == [.welcome(.init(stream: stream, processedUpTo: 9, receivedUpTo: 9))])
    }

    // MARK: Arrivals and hand-out

    @Test("data in order: reserve first, then hand out in order")
    func inOrderNeedsReservation() {
        var machine = ready()
        let counts = receive(&machine, [message(1), message(2), message(3)])
        #expect(counts == .init())
        #expect(machine.receivedUpTo == 3)
        var delivered: [ReceiverStream.Delivery] = []
        #expect(machine.handOut(window: 16, deliver: { delivered.append($0) }) == 3, "reserve what is ready")
        #expect(delivered.isEmpty, "nothing goes out before the reservation is durable")
        #expect(machine.handOut(window: 16, deliver: { delivered.append($0) }) == nil, "asked already")
        machine.reserved(upTo: 3)
        #expect(machine.handOut(window: 16, deliver: { delivered.append($0) }) == nil)
        #expect(delivered.map(\.sequence) == [1, 2, 3])
        #expect(delivered.map(\.payload) == [Array("m1".utf8), Array("m2".utf8), Array("m3".utf8)])
        #expect(delivered.allSatisfy { !$0.redelivered && $0.attempt == 1 })
        #expect(machine.handOut(window: 16, deliver: { delivered.append($0) }) == nil && delivered.count == 3, "each once")
    }

    @Test("out of order: buffered until the gap is filled")
    func outOfOrder() {
        var machine = ready()
        receive(&machine, [message(3), message(5)])
        #expect(machine.receivedUpTo == 0)
        var (delivered, reservations) = handOutReserving(&machine)
        #expect(delivered.isEmpty && reservations.isEmpty)
        receive(&machine, [message(1)])
        #expect(machine.receivedUpTo == 1)
        (delivered, reservations) = handOutReserving(&machine)
        #expect(delivered.map(\.sequence) == [1] && reservations == [1])
        receive(&machine, [message(2)])
        #expect(machine.receivedUpTo == 3)
        (delivered, reservations) = handOutReserving(&machine)
        #expect(delivered.map(\.sequence) == [2, 3] && reservations == [3])
        receive(&machine, [message(4)])
        (delivered, _) = handOutReserving(&machine)
        #expect(delivered.map(\.sequence) == [4, 5])
    }

    @Test("duplicates are counted; one of a finished number makes an ACK due at once, with its verdict again")
    func duplicates() throws {
        var machine = ready()
        receive(&machine, [message(1), message(2)])
        #expect(receive(&machine, [message(2, attempt: 2)]).duplicates == 1, "buffered already")
        _ = handOutReserving(&machine)
        #expect(receive(&machine, [message(1, attempt: 2)]).duplicates == 1, "handed out already")
        #expect(machine.dueFrames(now: t0).isEmpty, "not finished yet: nothing due at once")

        machine.settle(1, verdict: nil)
        machine.settle(2, verdict: .init(sequence: 2, code: .rejected, reason: "bad"))
        machine.marked(machine.takeMarks(), coalescing: coalescing(), now: t0)
        let first = try decode(machine.dueFrames(now: t0))
        #expect(first == [.outcomes(.init(stream: stream, entries: [.init(sequence: 2, code: .rejected, reason: "bad")])),
                          ack(processed: 2, received: 2)])
        #expect(machine.dueFrames(now: t0).isEmpty)

        // The sender resends 2 (it did not hear): the verdict goes again before the ACK.
        #expect(receive(&machine, [message(2, attempt: 3)]).duplicates == 1)
        let again = try decode(machine.dueFrames(now: at(1)))
        #expect(again == first)
        #expect(receive(&machine, [message(1, attempt: 3)]).duplicates == 1)
        #expect(try decode(machine.dueFrames(now: at(2))) == [ack(processed: 2, received: 2)])
    }

    @Test("numbers beyond the window are counted and dropped")
    func beyondWindow() {
        var machine = ready(processed: 10)
        let counts = receive(&machine, [message(11), message(14), message(15)], window: 4)
        #expect(counts == .init(duplicates: 0, beyondWindow: 1))
        #expect(receive(&machine, [message(3)], window: 4) == .init(duplicates: 1, beyondWindow: 0))
        _ = handOutReserving(&machine, window: 4)
        receive(&machine, [message(12), message(13)], window: 4)
        let (delivered, _) = handOutReserving(&machine, window: 4)
        #expect(delivered.map(\.sequence) == [12, 13, 14], "15 was dropped: the sender resends it")
    }

    @Test("tombstones and messages expired on arrival are settled without the application")
    func tombstonesAndExpired() throws {
        var machine = ready()
        receive(&machine, [tombstone(1), message(2, expiry: 500), message(3, expiry: 5_000)], wall: 1_000)
        let (delivered, reservations) = handOutReserving(&machine)
        #expect(delivered.map(\.sequence) == [3], "only the live message is delivered")
        #expect(reservations == [3])
        #expect(machine.takeMarks() == [1, 2])
        machine.marked([1, 2], coalescing: coalescing(), now: t0)
        #expect(try decode(machine.dueFrames(now: t0)) == [
            .outcomes(.init(stream: stream, entries: [.init(sequence: 2, code: .expired, reason: "expired on arrival")])),
            ack(processed: 2, received: 3),
        ])
    }

    // MARK: Settling and acknowledging

    @Test("settle → takeMarks → marked → OUTCOMES for rejections before the ACK; out-of-order numbers as ranges")
    func settleMarkAcknowledge() throws {
        var machine = ready()
        receive(&machine, (1...5).map { message($0) })
        _ = handOutReserving(&machine)
        let settled = [
            machine.settle(2, verdict: .init(sequence: 2, code: .rejected, reason: "réservé")),
            machine.settle(4, verdict: nil),
            machine.settle(4, verdict: nil),  // a second verdict changes nothing
            machine.settle(9, verdict: nil),  // never handed out
        ]
        #expect(settled == [true, true, false, false])
        #expect(machine.takeMarks() == [2, 4])
        #expect(machine.takeMarks().isEmpty)
        #expect(machine.dueFrames(now: t0).isEmpty, "not durable yet: no acknowledgement")
        #expect(!machine.isQuiet)
        machine.marked([2, 4], coalescing: coalescing(), now: t0)
        #expect(machine.processedAbove.sorted() == [2, 4] && machine.processedUpTo == 0)
        let frames = try decode(machine.dueFrames(now: t0))
        #expect(frames == [.outcomes(.init(stream: stream, entries: [.init(sequence: 2, code: .rejected, reason: "réservé")])),
                           ack(processed: 0, received: 5, ranges: [2...2, 4...4])])
        #expect(machine.isQuiet)
        machine.settle(1, verdict: nil)
        machine.settle(3, verdict: nil)
        machine.marked(machine.takeMarks(), coalescing: coalescing(count: 1), now: t0)
        #expect(machine.processedUpTo == 4 && machine.processedAbove.count == 0)
        #expect(try decode(machine.dueFrames(now: t0)) == [ack(processed: 4, received: 5)])
    }

    @Test("coalescing: an ACK when the count is reached, or when the delay has passed")
    func coalescingCountAndDelay() throws {
        var machine = ready()
        let slow = coalescing(count: 3, delay: .milliseconds(50))
        receive(&machine, (1...4).map { message($0) }, now: t0, coalescing: slow)
        _ = handOutReserving(&machine)
        machine.settle(1, verdict: nil)
        machine.marked(machine.takeMarks(), coalescing: slow, now: at(10))
        #expect(machine.dueFrames(now: at(59)).isEmpty)
        #expect(machine.nextDeadline == at(60))
        #expect(try decode(machine.dueFrames(now: at(60))) == [ack(processed: 1, received: 4)])
        // Count: three at once go without waiting.
        machine.settle(2, verdict: nil)
        machine.settle(3, verdict: nil)
        machine.settle(4, verdict: nil)
        machine.marked(machine.takeMarks(), coalescing: slow, now: at(70))
        #expect(try decode(machine.dueFrames(now: at(70))) == [ack(processed: 4, received: 4)])
        // A rejection is never held back by the delay.
        receive(&machine, [message(5)], now: at(80), coalescing: slow)
        _ = handOutReserving(&machine)
        machine.settle(5, verdict: .init(sequence: 5, code: .rejected, reason: "no"))
        machine.marked(machine.takeMarks(), coalescing: slow, now: at(81))
        #expect(try decode(machine.dueFrames(now: at(81))).count == 2)
        // acknowledgeNow drops the delay for what is owed.
        receive(&machine, [message(6)], now: at(90), coalescing: slow)
        _ = handOutReserving(&machine)
        machine.settle(6, verdict: nil)
        machine.marked(machine.takeMarks(), coalescing: slow, now: at(91))
        #expect(machine.dueFrames(now: at(92)).isEmpty)
        machine.acknowledgeNow()
        #expect(try decode(machine.dueFrames(now: at(92))) == [ack(processed: 6, received: 6)])
    }

    @Test("a receipt ACK is due within the receipt delay of new arrivals, whatever the processed mark")
    func receiptAcknowledgement() throws {
        var machine = ready()
        let receipt = coalescing(receipt: .milliseconds(10))
        receive(&machine, [message(1), message(2), message(4)], now: t0, coalescing: receipt)
        #expect(machine.nextDeadline == at(10))
        #expect(machine.dueFrames(now: at(9)).isEmpty)
        #expect(try decode(machine.dueFrames(now: at(10))) == [ack(processed: 0, received: 2)])
        #expect(machine.nextDeadline == nil)
    }

    // MARK: Restarts

    @Test("numbers at or below the stored reservation are handed out flagged redelivered; finished ones never again")
    func redelivered() {
        var machine = ready(processed: 2, above: [4], reserved: 6)
        receive(&machine, (3...8).map { message($0, attempt: 2) })
        #expect(machine.receivedUpTo == 8)
        let (delivered, reservations) = handOutReserving(&machine)
        #expect(delivered.map(\.sequence) == [3, 5, 6, 7, 8], "4 was processed before the restart")
        #expect(delivered.map(\.redelivered) == [true, true, true, false, false])
        #expect(reservations == [8])
        #expect(receive(&machine, [message(4, attempt: 3)]).duplicates == 1)
    }

    @Test("shutdown lowers the reservation to what the application took, never below what may have been seen before")
    func lowerReservation() {
        var machine = ready()
        receive(&machine, (1...10).map { message($0) })
        _ = handOutReserving(&machine)
        #expect(machine.lowerReservation(taken: 4) == 4)
        #expect(machine.loweringReservation && !machine.isQuiet)
        machine.reservationLowered()
        #expect(machine.isQuiet)
        #expect(machine.lowerReservation(taken: 10) == nil, "everything reserved was taken")
        #expect(machine.lowerReservation(taken: nil) == 0)
        machine.reservationLowered()

        var restarted = ready(processed: 2, reserved: 8)
        receive(&restarted, (3...12).map { message($0) })
        _ = handOutReserving(&restarted)
        #expect(restarted.lowerReservation(taken: 5) == 8, "numbers reserved by an earlier run stay reserved")
        restarted.reservationLowered()
        var untouched = ready(processed: 2, reserved: 8)
        #expect(untouched.lowerReservation(taken: nil) == nil)
    }

    // MARK: Verdicts the sender may not have heard (bugs StreamSimulationTests found, fixed)

    @Test("a HELLO's answer repeats every durable verdict above the sender's mark before the WELCOME that covers it, until a HELLO passes it")
    func welcomeCarriesRetainedVerdicts() throws {
        var machine = ready()
        receive(&machine, [message(1), message(2), message(3)])
        _ = handOutReserving(&machine)
        machine.settle(1, verdict: .init(sequence: 1, code: .rejected, reason: "no"))
        machine.settle(2, verdict: nil)
        machine.settle(3, verdict: .init(sequence: 3, code: .rejected, reason: "not yet durable"))
        machine.marked([1, 2], coalescing: coalescing(), now: t0)
        // A HELLO (a timeout's question, a new connection) arrives before the executor's next
        // flush sends the OUTCOMES entry: the answer carries it, before the WELCOME.
        guard case .answer(let frames) = machine.hello(firstUnacknowledged: 1) else {
            Issue.record("expected an answer")
            return
        }
        #expect(try decode(frames) == [
            .outcomes(.init(stream: stream, entries: [.init(sequence: 1, code: .rejected, reason: "no")])),
            .welcome(.init(stream: stream, processedUpTo: 2, receivedUpTo: 3)),
        ])
        // Sent once with the answer: the next ACK has nothing before it.
        #expect(try decode(machine.dueFrames(now: t0)) == [ack(processed: 2, received: 3)])
        // The connection drops; a new HELLO from the same mark gets the verdict again.
        guard case .answer(let again) = machine.hello(firstUnacknowledged: 1) else { return }
        #expect(try decode(again).count == 2)
        // Once the sender says it finished 1 and 2, the verdict is forgotten.
        guard case .answer(let last) = machine.hello(firstUnacknowledged: 3) else { return }
        #expect(try decode(last) == [.welcome(.init(stream: stream, processedUpTo: 2, receivedUpTo: 3))])
    }

    @Test("frames the sender's full queue refused go again, OUTCOMES before the ACK")
    func refusedFramesGoAgain() throws {
        var machine = ready()
        receive(&machine, [message(1)])
        _ = handOutReserving(&machine)
        machine.settle(1, verdict: .init(sequence: 1, code: .rejected, reason: "no"))
        machine.marked(machine.takeMarks(), coalescing: coalescing(), now: t0)
        let first = try decode(machine.dueFrames(now: t0))
        #expect(first.count == 2)
        machine.dueFramesNotSent(senderConnected: true)
        #expect(!machine.isQuiet)
        #expect(try decode(machine.dueFrames(now: t0)) == first)
        #expect(machine.isQuiet)
    }

    @Test("a HELLO's answer that the sender's full queue refused: its verdicts go again before the next ACK")
    func refusedAnswerGoesAgain() throws {
        var machine = ready()
        receive(&machine, [message(1)])
        _ = handOutReserving(&machine)
        machine.settle(1, verdict: .init(sequence: 1, code: .rejected, reason: "no"))
        machine.marked(machine.takeMarks(), coalescing: coalescing(), now: t0)
        guard case .answer(let frames) = machine.hello(firstUnacknowledged: 1) else { return }
        #expect(frames.count == 2)
        machine.dueFramesNotSent(senderConnected: true)
        #expect(try decode(machine.dueFrames(now: t0)) == [
            .outcomes(.init(stream: stream, entries: [.init(sequence: 1, code: .rejected, reason: "no")])),
            ack(processed: 1, received: 1),
        ])
    }

    @Test("verdicts loaded from the store go in the first answer after a restart")
    func storedVerdictsAnswered() throws {
        let state = InboundStreamState(sender: "s", streamID: stream, processedUpTo: 2, reservedUpTo: 2)
        var machine = ReceiverStream(sender: "s", stream: stream, stored: state,
                                     verdicts: [2: InboundVerdict(code: 1, reason: "stored"), 7: InboundVerdict(code: 9, reason: "unknown code")])
        guard case .answer(let frames) = machine.hello(firstUnacknowledged: 1) else { return }
        #expect(try decode(frames) == [
            .outcomes(.init(stream: stream, entries: [.init(sequence: 2, code: .rejected, reason: "stored")])),
            .welcome(.init(stream: stream, processedUpTo: 2, receivedUpTo: 2)),
        ])
        #expect(machine.verdicts(among: [1, 2]) == [2: InboundVerdict(code: 1, reason: "stored")])
    }
}
