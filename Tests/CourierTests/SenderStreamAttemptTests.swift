import CourierSpool
import Testing
@testable import Courier

/// Attempts counted across restarts: what ``SenderStream`` records for the next run
/// (``SenderStream/attemptsToRecord(now:)``) and how a new stream goes on from it
/// (``SenderStream/restore(attempts:)``). The test is the executor, as in SenderStreamTests.
@Suite("Sender stream attempts across restarts")
struct SenderStreamAttemptTests {
    let t0 = ContinuousClock.now
    let stream: UInt64 = 0xA77E
    let attemptDelay: Duration = .milliseconds(50)

    func machine(durableUpTo: UInt64, processedUpTo: UInt64 = 0, maxAttempts: Int? = nil, window: Int = 8) -> SenderStream {
        var settings = SenderStream.Settings(window: window, inFlightBytes: 1 << 20, maxAttempts: maxAttempts, retransmission: RetransmissionPolicy(),
                                             protocolVersion: 1)
        settings.attemptRecordDelay = attemptDelay
        return SenderStream(stream: stream, settings: settings, durableUpTo: durableUpTo, processedUpTo: processedUpTo, now: t0, seed: 0x5EED)
    }

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { t0 + .milliseconds(milliseconds) }

    func records(_ range: ClosedRange<UInt64>) -> [SpoolRecord] {
        range.map { SpoolRecord(sequenceNumber: $0, enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0, payload: Array(repeating: 1, count: 10)) }
    }

    /// HELLO and a WELCOME saying what the receiver holds: the link is open.
    func open(_ machine: inout SenderStream, now: ContinuousClock.Instant, processed: UInt64 = 0, received: UInt64 = 0) {
        var actions: [SenderStream.Action] = []
        #expect(machine.helloDue(now: now))
        machine.helloSent(true, now: now)
        machine.received(.welcome(.init(stream: stream, processedUpTo: processed, receivedUpTo: received)), now: now, into: &actions)
        #expect(machine.link == .open)
    }

    /// Builds and sends DATA frames as ``OutboundPeer/pump(now:)`` does, until nothing more
    /// goes; returns the (sequence, attempt, tombstone) of every record sent.
    func pump(_ machine: inout SenderStream, _ spool: [SpoolRecord], now: ContinuousClock.Instant,
              actions: inout [SenderStream.Action]) throws -> [(UInt64, UInt32, Bool)] {
        var sent: [(UInt64, UInt32, Bool)] = []
        while let window = machine.sendWindow() {
            let frame = machine.frame(for: window, records: spool.filter { $0.sequenceNumber >= window.from }.prefix(window.count),
                                      wall: 1_000, into: &actions)
            if frame.batch.isEmpty {
                guard frame.next > window.from else { break }
                machine.skip(to: frame.next)
                continue
            }
            guard case .data(let batch) = try WireDecoder(maxPayloadSize: 1 << 20).decode(frame.bytes) else {
                Issue.record("not a DATA frame")
                break
            }
            sent += batch.records.map { ($0.sequence, $0.attempt, $0.isTombstone) }
            _ = machine.sent(frame, now: now)
        }
        return sent
    }

    /// A retransmission timeout, and the receiver answering that it holds `received`.
    func timeOut(_ machine: inout SenderStream, at now: ContinuousClock.Instant, nextSequence: UInt64, received: UInt64 = 0) {
        var actions: [SenderStream.Action] = []
        _ = machine.tick(now: now, nextSequence: nextSequence, into: &actions)
        #expect(machine.helloDue(now: now))
        machine.helloSent(true, now: now)
        machine.received(.welcome(.init(stream: stream, processedUpTo: 0, receivedUpTo: received)), now: now, into: &actions)
    }

    @Test("after a restart the first send of each number carries the attempt after the last one recorded")
    func restoredAttemptsContinue() throws {
        var machine = machine(durableUpTo: 6, processedUpTo: 1)
        machine.restore(attempts: SentAttempts(sentUpTo: 4, repeated: [3: 3]))
        open(&machine, now: t0, processed: 1, received: 1)
        var actions: [SenderStream.Action] = []
        let sent = try pump(&machine, records(2...6), now: at(1), actions: &actions)
        #expect(sent.map(\.0) == [2, 3, 4, 5, 6])
        #expect(sent.map(\.1) == [2, 4, 2, 1, 1], "2 and 4 went once before, 3 three times; 5 and 6 never")
        #expect(sent.allSatisfy { !$0.2 })
        #expect(machine.counts.retransmitted == 3)
        // Numbers sent again: the counts are due for recording at once.
        let recorded1 = machine.attemptsToRecord(now: at(1))
        #expect(recorded1 == SentAttempts(sentUpTo: 6, repeated: [2: 2, 3: 4, 4: 2]))
        let recorded2 = machine.attemptsToRecord(now: at(1))
        #expect(recorded2 == nil, "recorded once")
    }

    @Test("restored counts hold no bytes until they go again, and then count in flight")
    func restoredBytes() throws {
        var machine = machine(durableUpTo: 3)
        machine.restore(attempts: SentAttempts(sentUpTo: 2))
        #expect(machine.ledger.bytesInFlight == 0)
        open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        _ = try pump(&machine, records(1...3), now: at(1), actions: &actions)
        #expect(machine.ledger.bytesInFlight == 30)
        machine.received(.ack(.init(stream: stream, processedUpTo: 3, receivedUpTo: 3, processedRanges: [])), now: at(2), into: &actions)
        #expect(machine.ledger.bytesInFlight == 0)
    }

    @Test("maxAttempts counts the attempts of earlier runs: a number that used them up is dead-lettered at once")
    func maxAttemptsAcrossRestart() throws {
        // Run 1: maxAttempts 2; each number goes twice, then the node dies.
        var first = machine(durableUpTo: 2, maxAttempts: 2)
        open(&first, now: t0)
        var actions: [SenderStream.Action] = []
        #expect(try pump(&first, records(1...2), now: at(0), actions: &actions).map(\.1) == [1, 1])
        timeOut(&first, at: at(2_000), nextSequence: 3)
        #expect(try pump(&first, records(1...2), now: at(2_000), actions: &actions).map(\.1) == [2, 2])
        #expect(first.counts.deadLettered == 0)
        let taken3 = first.attemptsToRecord(now: at(2_000))
        let recorded = try #require(taken3)
        #expect(recorded == SentAttempts(sentUpTo: 2, repeated: [1: 2, 2: 2]))

        // Run 2: the first transmission would be attempt 3, beyond maxAttempts.
        var second = machine(durableUpTo: 2, maxAttempts: 2)
        second.restore(attempts: recorded)
        open(&second, now: at(10_000))
        actions.removeAll()
        #expect(try pump(&second, records(1...2), now: at(10_000), actions: &actions).isEmpty, "each waits for its dead letter")
        let reason = "no acknowledgement after 2 attempts"
        let letters = actions.compactMap { action -> (UInt64, DeadLetterReason)? in
            if case .deadLetter(let sequence, _, let reason, _) = action { (sequence, reason) } else { nil }
        }
        #expect(letters.map(\.0) == [1])
        #expect(letters.map(\.1) == [.deadLettered(reason)])
        second.deadLetterStored(1)
        let sent = try pump(&second, records(1...2), now: at(10_001), actions: &actions)
        second.deadLetterStored(2)
        let rest = try pump(&second, records(1...2), now: at(10_002), actions: &actions)
        let both = sent + rest
        #expect(both.map(\.0) == [1, 2])
        #expect(both.allSatisfy { $0.2 }, "both go as tombstones")
        #expect(second.counts.deadLettered == 2)
        #expect(actions.contains { if case .report(_, let individually) = $0 { individually.contains { $0.0 == 2 && $0.1 == .deadLettered(reason: reason) } } else { false } })
    }

    @Test("without maxAttempts reached, a restart changes only the attempt numbers")
    func belowMaxAttempts() throws {
        var machine = machine(durableUpTo: 2, maxAttempts: 3)
        machine.restore(attempts: SentAttempts(sentUpTo: 2, repeated: [1: 2]))
        open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        #expect(try pump(&machine, records(1...2), now: at(1), actions: &actions).map(\.1) == [3, 2])
        #expect(machine.counts.deadLettered == 0)
        timeOut(&machine, at: at(2_000), nextSequence: 3)
        actions.removeAll()
        // 1 has used its three attempts: it is given up, and nothing goes past it before its
        // dead letter is stored.
        let next = try pump(&machine, records(1...2), now: at(2_000), actions: &actions)
        #expect(next.isEmpty)
        #expect(machine.counts.deadLettered == 1)
    }

    @Test("counts at or below the processed mark, or above what is durable, are not restored")
    func restoreBounds() throws {
        var machine = machine(durableUpTo: 5, processedUpTo: 2)
        machine.restore(attempts: SentAttempts(sentUpTo: 9, repeated: [1: 5, 2: 5, 3: 2, 7: 4]))
        open(&machine, now: t0, processed: 2, received: 2)
        var actions: [SenderStream.Action] = []
        let sent = try pump(&machine, records(3...5), now: at(1), actions: &actions)
        #expect(sent.map(\.1) == [3, 2, 2])
        #expect(machine.attempts == SentAttempts(sentUpTo: 5, repeated: [3: 3, 4: 2, 5: 2]))
    }

    @Test("a higher sent mark alone is recorded lazily; a resend at once; the tick wakes for it")
    func recordingIsCoalesced() throws {
        var machine = machine(durableUpTo: 2)
        open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        let recorded4 = machine.attemptsToRecord(now: t0)
        #expect(recorded4 == nil, "nothing sent, nothing to record")
        _ = try pump(&machine, records(1...2), now: at(0), actions: &actions)
        let recorded5 = machine.attemptsToRecord(now: at(10))
        #expect(recorded5 == nil, "first sends wait for the delay")
        let deadline = try #require(machine.tick(now: at(10), nextSequence: 5, into: &actions))
        #expect(deadline <= at(0) + attemptDelay, "the tick asks to run when the counts are due")
        let recorded6 = machine.attemptsToRecord(now: at(50))
        #expect(recorded6 == SentAttempts(sentUpTo: 2))
        let recorded7 = machine.attemptsToRecord(now: at(60))
        #expect(recorded7 == nil)
        // More first sends within the delay are recorded together.
        machine.durable(upTo: 4)
        _ = try pump(&machine, records(1...4), now: at(60), actions: &actions)
        let recorded8 = machine.attemptsToRecord(now: at(100))
        #expect(recorded8 == nil)
        let recorded9 = machine.attemptsToRecord(now: at(110))
        #expect(recorded9 == SentAttempts(sentUpTo: 4))
        // A resend: due at once.
        timeOut(&machine, at: at(2_000), nextSequence: 5, received: 2)
        let again = try pump(&machine, records(1...4), now: at(2_000), actions: &actions)
        #expect(again.map(\.0) == [3, 4] && again.map(\.1) == [2, 2])
        let recorded10 = machine.attemptsToRecord(now: at(2_000))
        #expect(recorded10 == SentAttempts(sentUpTo: 4, repeated: [3: 2, 4: 2]))
        // Stopping: whatever is pending goes whatever the time.
        machine.durable(upTo: 4)
        let recorded11 = machine.attemptsToRecord(now: nil)
        #expect(recorded11 == nil, "nothing new since")
    }

    @Test("counts carried through two restarts keep growing by one per transmission")
    func twoRestarts() throws {
        var recorded = SentAttempts.none
        var seen: [UInt32] = []
        for run in 0..<3 {
            var machine = machine(durableUpTo: 1)
            machine.restore(attempts: recorded)
            open(&machine, now: at(run * 10_000))
            var actions: [SenderStream.Action] = []
            seen += try pump(&machine, records(1...1), now: at(run * 10_000), actions: &actions).map(\.1)
            timeOut(&machine, at: at(run * 10_000 + 2_000), nextSequence: 2)
            seen += try pump(&machine, records(1...1), now: at(run * 10_000 + 2_000), actions: &actions).map(\.1)
            let taken12 = machine.attemptsToRecord(now: nil)
            recorded = try #require(taken12)
        }
        #expect(seen == [1, 2, 3, 4, 5, 6])
        #expect(recorded == SentAttempts(sentUpTo: 1, repeated: [1: 6]))
    }
}
