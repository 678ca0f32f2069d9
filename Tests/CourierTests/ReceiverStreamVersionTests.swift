import CourierSpool
import Testing
@testable import Courier

/// ``ReceiverStream`` with version-2 senders: every frame back in the HELLO's version, the
/// nonce echoed, the limits announced, headers handed out with their message.
@Suite("Receiver stream machine, protocol version 2")
struct ReceiverStreamVersionTests {
    let base = ReceiverStreamTests()

    func versionByte(_ frame: [UInt8]) -> UInt8 { frame[2] }

    @Test("a version-2 HELLO is answered by a version-2 WELCOME that echoes its nonce and announces the limits; a version-1 HELLO in version 1")
    func answersInTheHelloVersion() throws {
        var machine = base.ready(processed: 3)
        machine.limits = .init(window: 64, maxMessageSize: 2048)
        guard case .answer(let frames) = machine.hello(firstUnacknowledged: 4, nonce: 0xFEED) else { Issue.record("no answer"); return }
        #expect(frames.map(versionByte) == [2])
        #expect(try base.decode(frames) == [.welcome(.init(stream: base.stream, processedUpTo: 3, receivedUpTo: 3,
                                                          answer: .init(nonce: 0xFEED, window: 64, maxMessageSize: 2048)))])
        // The acknowledgements of this stream go in version 2 too.
        _ = machine.receive([base.message(4)], window: 64, wall: 0, now: base.at(0), coalescing: base.coalescing())
        _ = base.handOutReserving(&machine)
        let settled = machine.settle(4, verdict: .init(sequence: 4, code: .rejected, reason: "no"))
        #expect(settled)
        machine.marked(machine.takeMarks(), coalescing: base.coalescing(), now: base.at(1))
        #expect(machine.dueFrames(now: base.at(1)).map(versionByte) == [2, 2], "OUTCOMES and ACK")

        guard case .answer(let again) = machine.hello(firstUnacknowledged: 4, nonce: nil) else { Issue.record("no answer"); return }
        #expect(again.map(versionByte) == [1, 1], "the retained verdict, then the WELCOME, in version 1")
        #expect(try base.decode(again).last == .welcome(.init(stream: base.stream, processedUpTo: 4, receivedUpTo: 4)))
    }

    @Test("HELLOs that wait for a new stream's record get one version-2 WELCOME, echoing the latest nonce")
    func oneAnswerForWaitingHellos() throws {
        var machine = base.machine()
        for nonce: UInt64 in [7, 8, 9] {
            #expect(machine.hello(firstUnacknowledged: 1, nonce: nonce) == .recordStart(processedUpTo: 0))
        }
        let frames = try base.decode(machine.startRecorded())
        #expect(frames.count == 1)
        guard case .welcome(let welcome) = frames.first else { Issue.record("\(frames)"); return }
        #expect(welcome.answer?.nonce == 9)
    }

    @Test("headers arrive with their message, as sent")
    func headersHandedOut() {
        var machine = base.ready()
        _ = machine.hello(firstUnacknowledged: 1, nonce: 1)
        let block = HeaderBlock.encode([("k", "v")])
        var tagged = base.message(1)
        tagged.headers = block[...]
        _ = machine.receive([tagged, base.message(2)], window: 16, wall: 0, now: base.at(0), coalescing: base.coalescing())
        let (delivered, _) = base.handOutReserving(&machine)
        #expect(delivered.map(\.headers) == [block, []])
    }
}

extension ReceiverStreamVersionTests {
    @Test("a version-2 WELCOME lists what arrived beyond the first gap; a version-1 WELCOME cannot")
    func heldRanges() throws {
        var machine = base.ready()
        _ = machine.hello(firstUnacknowledged: 1, nonce: 5)
        _ = machine.receive([1, 2, 4, 5, 7].map { base.message($0) }, window: 16, wall: 0, now: base.at(0), coalescing: base.coalescing())
        guard case .answer(let frames) = machine.hello(firstUnacknowledged: 1, nonce: 6) else { Issue.record("no answer"); return }
        guard case .welcome(let welcome) = try base.decode(frames).last else { Issue.record("no WELCOME"); return }
        #expect(welcome.receivedUpTo == 2 && welcome.answer?.receivedRanges == [4...5, 7...7])
    }
}
