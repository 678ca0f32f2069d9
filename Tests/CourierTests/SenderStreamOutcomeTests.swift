import CourierSpool
import Testing
@testable import Courier

/// SenderStream's rules that keep outcomes right across lost frames, new connections and
/// restarts (issues 21 and 22): each found by StreamSimulationTests or a review, each a
/// transition tested here.
@Suite("Sender stream machine: outcomes across faults")
struct SenderStreamOutcomeTests {
    let base = SenderStreamTests()
    var t0: ContinuousClock.Instant { base.t0 }
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { base.at(milliseconds) }
    func reported(_ actions: [SenderStream.Action]) -> [(UInt64, Outcome)] {
        var all: [(UInt64, Outcome)] = []
        for action in actions {
            if case .report(_, let individually) = action { all += individually }
        }
        return all
    }
    func outcomes(_ entries: [(UInt64, String)]) -> WireFrame {
        .outcomes(.init(stream: base.stream, entries: entries.map { .init(sequence: $0.0, code: .rejected, reason: $0.1) }))
    }

    @Test("on a new connection, an ACK before the WELCOME is ignored; the verdicts sent before the WELCOME are taken")
    func ackBeforeWelcomeIgnored() throws {
        var machine = base.machine(durableUpTo: 3)
        _ = base.open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        _ = try #require(base.sendNext(&machine, records: base.records(1...3), now: at(1), actions: &actions))
        machine.connectionChanged(.disconnected, now: at(2), into: &actions)
        machine.connectionChanged(.handshakeSucceeded, now: at(3), into: &actions)
        actions.removeAll()
        // Sent by the receiver before it heard this connection's HELLO: the OUTCOMES frame for
        // 2 was lost with the old connection.
        machine.received(base.ack(processed: 3, received: 3), now: at(4), into: &actions)
        #expect(machine.processedUpTo == 0 && reported(actions).isEmpty)
        machine.helloSent(true, now: at(4))
        machine.received(outcomes([(2, "non")]), now: at(5), into: &actions)
        machine.received(base.welcome(processed: 3, received: 3), now: at(5), into: &actions)
        #expect(machine.processedUpTo == 3)
        #expect(reported(actions).map(\.1) == [.rejected(reason: "non")])
        let cumulative = actions.compactMap { if case .report(let mark, let individually) = $0, individually.isEmpty { mark } else { nil } }
        #expect(cumulative.last == 3)
        #expect(base.processedCounts(actions) == 2, "1 and 3 processed, 2 rejected")
    }

    @Test("numbers an earlier run decided (their dead letters are stored) are never reported again and go as tombstones")
    func restoredDecisions() throws {
        var machine = base.machine(durableUpTo: 3)
        machine.restore(decided: [2: .rejected(reason: "earlier"), 9: .expired])
        _ = base.open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        let frame = try #require(base.sendNext(&machine, records: base.records(1...3), now: at(1), actions: &actions))
        #expect(try base.dataRecords(frame).map(\.isTombstone) == [false, true, false])
        machine.received(base.ack(processed: 3, received: 3), now: at(2), into: &actions)
        #expect(reported(actions).isEmpty && base.deadLetters(actions).isEmpty)
        #expect(base.processedCounts(actions) == 2)
    }

    @Test("a probe whose answer is lost asks again: the stream never waits on silence")
    func lostProbeAnswer() throws {
        var machine = base.machine(durableUpTo: 2)
        _ = base.open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        _ = try #require(base.sendNext(&machine, records: base.records(1...2), now: at(0), actions: &actions))
        machine.received(base.ack(processed: 0, received: 2), now: at(1), into: &actions)
        _ = machine.tick(now: at(2), nextSequence: 3, into: &actions)
        let probe = try #require(machine.probeDue)
        _ = machine.tick(now: probe, nextSequence: 3, into: &actions)
        #expect(machine.helloDue(now: probe))
        machine.helloSent(true, now: probe)
        guard case .asking(let again?) = machine.link else {
            Issue.record("a probe's question must repeat on its own timer, got \(machine.link)")
            return
        }
        #expect(again > probe)
        let deadline = try #require(machine.tick(now: probe, nextSequence: 3, into: &actions))
        #expect(deadline <= again)
        #expect(machine.helloDue(now: again), "no answer came: ask again")
        // The answer moves the processed mark; nothing is resent.
        machine.helloSent(true, now: again)
        machine.received(base.welcome(processed: 2, received: 2), now: again, into: &actions)
        #expect(machine.link == .open && machine.processedUpTo == 2 && machine.sendWindow() == nil)
    }

    @Test("an answer that shows the receiver holding less than believed (it restarted, or a frame was stale) makes the missing numbers go again")
    func answerBelowBelief() throws {
        var machine = base.machine(durableUpTo: 4)
        _ = base.open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        _ = try #require(base.sendNext(&machine, records: base.records(1...4), now: at(0), actions: &actions))
        machine.received(base.ack(processed: 0, received: 4), now: at(1), into: &actions)
        machine.connectionChanged(.disconnected, now: at(2), into: &actions)
        machine.connectionChanged(.handshakeSucceeded, now: at(3), into: &actions)
        machine.helloSent(true, now: at(3))
        machine.received(base.welcome(processed: 1, received: 1), now: at(4), into: &actions)
        #expect(machine.receivedUpTo == 1 && machine.nextToSend == 2)
        let frame = try #require(base.sendNext(&machine, records: base.records(1...4), now: at(5), actions: &actions))
        #expect(try base.dataRecords(frame).map(\.sequence) == [2, 3, 4])
    }

    @Test("verdicts heard and made durable are confirmed by a HELLO (at most every 200 ms), so the receiver can forget them; its answer counts as late")
    func confirmationHello() throws {
        var machine = base.machine(durableUpTo: 3)
        _ = base.open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        _ = try #require(base.sendNext(&machine, records: base.records(1...3), now: at(0), actions: &actions))
        machine.received(outcomes([(2, "non")]), now: at(1), into: &actions)
        machine.received(base.ack(processed: 3, received: 3), now: at(1), into: &actions)
        #expect(!machine.confirmationDue(now: at(300)), "its dead letter is not stored yet")
        #expect(machine.hello(nextSequence: 4).firstUnacknowledged == 2, "a HELLO does not pass an outcome not yet durable here")
        machine.deadLetterStored(2)
        #expect(!machine.confirmationDue(now: at(100)), "at most one every 200 ms")
        #expect(machine.confirmationDue(now: at(300)))
        #expect(machine.hello(nextSequence: 4).firstUnacknowledged == 4)
        machine.confirmationSent(true, now: at(300))
        #expect(!machine.confirmationDue(now: at(1_000)), "confirmed")
        machine.received(base.welcome(processed: 3, received: 3), now: at(301), into: &actions)
        #expect(machine.link == .open && machine.sendWindow() == nil, "the answer is late: nothing moves back, nothing is resent")
    }

    @Test("an unreadable frame: no acknowledgement counts until a WELCOME after a new HELLO with nothing unreadable since; the verdicts before it are taken")
    func unreadableFrame() throws {
        var machine = base.machine(durableUpTo: 3)
        _ = base.open(&machine, now: t0)
        var actions: [SenderStream.Action] = []
        _ = try #require(base.sendNext(&machine, records: base.records(1...3), now: at(0), actions: &actions))
        // An OUTCOMES frame for 2 whose checksum failed, then the ACK that covers it.
        machine.unreadableFrame(now: at(1))
        machine.received(base.ack(processed: 3, received: 3), now: at(2), into: &actions)
        #expect(machine.processedUpTo == 0 && reported(actions).isEmpty)
        #expect(machine.helloDue(now: at(2)), "asked at once")
        machine.helloSent(true, now: at(2))
        // The answer's verdicts are unreadable again: its WELCOME does not count either.
        machine.unreadableFrame(now: at(3))
        machine.received(base.welcome(processed: 3, received: 3), now: at(3), into: &actions)
        #expect(machine.processedUpTo == 0)
        guard case .asking(let due?) = machine.link else {
            Issue.record("expected a new question, got \(machine.link)")
            return
        }
        machine.helloSent(true, now: due)
        machine.received(outcomes([(2, "non")]), now: due, into: &actions)
        machine.received(base.welcome(processed: 3, received: 3), now: due, into: &actions)
        #expect(machine.processedUpTo == 3 && machine.link == .open)
        #expect(reported(actions).map(\.1) == [.rejected(reason: "non")])
        // Trusted again: the next ACK counts.
        machine.durable(upTo: 4)
        _ = try #require(base.sendNext(&machine, records: base.records(4...4), now: due, actions: &actions))
        machine.received(base.ack(processed: 4, received: 4), now: due, into: &actions)
        #expect(machine.processedUpTo == 4)
    }
}
