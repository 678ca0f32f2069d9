import CourierSpool
import Testing
@testable import Courier

/// The sender's machine speaking protocol version 2: answers named by nonce, the receiver's
/// announced limits, and the fall back to version 1.
@Suite("Sender stream machine, protocol version 2")
struct SenderStreamVersionTests {
    let base = SenderStreamTests()
    var stream: UInt64 { base.stream }
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { base.at(milliseconds) }

    func answer(_ nonce: UInt64?, processed: UInt64 = 0, received: UInt64 = 0, window: UInt32 = 8192,
                maxMessageSize: UInt32 = 1 << 20) -> WireFrame {
        .welcome(.init(stream: stream, processedUpTo: processed, receivedUpTo: received,
                       answer: .init(nonce: nonce ?? 0, window: window, maxMessageSize: maxMessageSize)))
    }

    /// Says HELLO and returns its nonce.
    func sayHello(_ machine: inout SenderStream, now: ContinuousClock.Instant) throws -> UInt64 {
        #expect(machine.helloDue(now: now))
        let hello = machine.hello(nextSequence: machine.durableUpTo + 1)
        guard case .hello(let decoded) = try base.decode(machine.helloFrame(nextSequence: machine.durableUpTo + 1)) else {
            Issue.record("not a HELLO")
            return 0
        }
        #expect(decoded == hello, "written in version 2, nonce included")
        machine.helloSent(true, now: now)
        return try #require(hello.nonce)
    }

    @Test("only a WELCOME that echoes a HELLO of the open question answers it; older ones never open the link or cause a resend")
    func namedAnswers() throws {
        var machine = base.machine(durableUpTo: 6, version: 2)
        var actions: [SenderStream.Action] = []
        let first = try sayHello(&machine, now: at(0))
        machine.received(answer(first &- 1), now: at(1), into: &actions)
        #expect(!machine.link.isWelcomed, "an answer to a HELLO of an earlier connection is not this one's")
        machine.received(answer(first), now: at(2), into: &actions)
        #expect(machine.link == .open)

        _ = base.sendNext(&machine, records: base.records(1...6), now: at(3), actions: &actions)
        #expect(machine.highestSent == 6)
        _ = machine.tick(now: at(3) + .seconds(2), nextSequence: 7, into: &actions)
        guard case .asking = machine.link else { Issue.record("no question after the timeout: \(machine.link)"); return }
        let second = try sayHello(&machine, now: at(3) + .seconds(2))
        #expect(second == first &+ 1)
        // The answer to the connection's first HELLO arrives again, late (it says nothing was
        // received): it moves nothing back and resends nothing.
        machine.received(answer(first), now: at(2_100), into: &actions)
        #expect(machine.sendWindow() == nil, "still asking")
        machine.received(answer(second, processed: 2, received: 4), now: at(2_200), into: &actions)
        #expect(machine.link == .open && machine.processedUpTo == 2)
        #expect(machine.sendWindow()?.from == 5, "only what the receiver lacks goes again")
    }

    @Test("after an unreadable frame only the answer to a HELLO sent after it restores trust in acknowledgements")
    func unreadableThenNamedAnswer() throws {
        var machine = base.machine(durableUpTo: 4, version: 2)
        var actions: [SenderStream.Action] = []
        let first = try sayHello(&machine, now: at(0))
        machine.received(answer(first), now: at(1), into: &actions)
        _ = base.sendNext(&machine, records: base.records(1...4), now: at(2), actions: &actions)
        machine.unreadableFrame(now: at(3))
        #expect(machine.distrustsAcknowledgements)
        machine.received(answer(first, processed: 4, received: 4), now: at(4), into: &actions)
        machine.received(base.ack(processed: 4, received: 4), now: at(4), into: &actions)
        #expect(machine.processedUpTo == 0 && machine.distrustsAcknowledgements, "an answer from before the unreadable frame proves nothing")
        let second = try sayHello(&machine, now: at(5))
        machine.received(answer(second, processed: 3, received: 4), now: at(6), into: &actions)
        #expect(!machine.distrustsAcknowledgements && machine.processedUpTo == 3 && machine.link == .open)
    }

    @Test("the announced window bounds what is in flight, and the limits are reported once per change")
    func announcedWindow() throws {
        var machine = base.machine(durableUpTo: 20, window: 16, version: 2)
        var actions: [SenderStream.Action] = []
        let nonce = try sayHello(&machine, now: at(0))
        machine.received(answer(nonce, window: 3, maxMessageSize: 100), now: at(1), into: &actions)
        machine.received(answer(nonce, window: 3, maxMessageSize: 100), now: at(2), into: &actions)
        let limits = actions.compactMap { if case .peerLimits(let w, let m) = $0 { (w, m) } else { nil } }
        #expect(limits.count == 1 && limits.first?.0 == 3 && limits.first?.1 == 100)
        #expect(machine.sendWindow() == .init(from: 1, limit: 3, count: 3))
        #expect(machine.peerWindow == 3 && machine.peerMaxMessageSize == 100)
    }

    @Test("a payload above the receiver's announced maximum is dead-lettered at once, not sent until its attempts run out")
    func announcedMaximum() throws {
        var machine = base.machine(durableUpTo: 3, version: 2)
        var actions: [SenderStream.Action] = []
        let nonce = try sayHello(&machine, now: at(0))
        machine.received(answer(nonce, maxMessageSize: 10), now: at(1), into: &actions)
        let records = [base.record(1, bytes: 10), base.record(2, bytes: 11), base.record(3, bytes: 1)]
        let frame = try #require(base.sendNext(&machine, records: records, now: at(2), actions: &actions))
        #expect(try base.dataRecords(frame).map(\.sequence) == [1])
        let letters = base.deadLetters(actions)
        #expect(letters.map(\.0) == [2])
        #expect(letters.first?.2.text.contains("maximum message size of 10 bytes") == true)
    }

    @Test("VERSIONS [1] makes the stream speak version 1 on this connection; headers cannot go then, and a new connection tries 2 again")
    func fallBackToVersionOne() throws {
        var machine = base.machine(durableUpTo: 2, version: 2)
        var actions: [SenderStream.Action] = []
        _ = try sayHello(&machine, now: at(0))
        machine.received(.versions(.init(supported: [1])), now: at(1), into: &actions)
        #expect(machine.version == 1)
        #expect(actions.contains { if case .protocolVersion(1, [1]) = $0 { true } else { false } })
        #expect(!actions.contains { if case .unsupportedProtocol = $0 { true } else { false } })
        #expect(machine.helloDue(now: at(1)), "asks again at once, in version 1")
        #expect(machine.hello(nextSequence: 3).nonce == nil)
        #expect(Array(machine.helloFrame(nextSequence: 3)[0...2]) == [0x43, 0x52, 1])
        machine.helloSent(true, now: at(1))
        machine.received(base.welcome(processed: 0, received: 0), now: at(2), into: &actions)
        #expect(machine.link == .open)

        var withHeaders = base.record(1)
        withHeaders.headers = HeaderBlock.encode([("k", "v")])
        let frame = try #require(base.sendNext(&machine, records: [withHeaders, base.record(2)], now: at(3), actions: &actions))
        #expect(frame.batch.isEmpty)
        #expect(base.deadLetters(actions).first?.2.text.contains("protocol version 1") == true)

        machine.connectionChanged(.handshakeSucceeded, now: at(4), into: &actions)
        #expect(machine.version == 2 && machine.hello(nextSequence: 3).nonce != nil)
        // A VERSIONS that lists the version spoken is about some other frame: nothing changes.
        machine.received(.versions(.init(supported: [1, 2])), now: at(5), into: &actions)
        #expect(machine.version == 2)
    }
}

extension SenderStreamVersionTests {
    @Test("a resend after a timeout leaves out what the answer says the receiver holds beyond its gap")
    func selectiveResend() throws {
        var machine = base.machine(durableUpTo: 8, version: 2)
        var actions: [SenderStream.Action] = []
        let first = try sayHello(&machine, now: at(0))
        machine.received(answer(first), now: at(1), into: &actions)
        _ = base.sendNext(&machine, records: base.records(1...8), now: at(2), actions: &actions)
        _ = machine.tick(now: at(2) + .seconds(2), nextSequence: 9, into: &actions)
        let question = try sayHello(&machine, now: at(2) + .seconds(2))
        // The receiver lost 3 and 6 (say, dropped them), and holds the rest.
        let held: WireFrame = .welcome(.init(stream: stream, processedUpTo: 0, receivedUpTo: 2,
                                             answer: .init(nonce: question, window: 8192, maxMessageSize: 1 << 20,
                                                           receivedRanges: [4...5, 7...8])))
        machine.received(held, now: at(2_100), into: &actions)
        let frame = try #require(base.sendNext(&machine, records: base.records(1...8), now: at(2_200), actions: &actions))
        #expect(try base.dataRecords(frame).map(\.sequence) == [3, 6])
        #expect(try base.dataRecords(frame).map(\.attempt) == [2, 2])
        #expect(machine.sendWindow() == nil, "nothing more to send")
    }
}
