import CourierSpool
import SystemPackage
import Testing
import TestSupport
@testable import Courier

@Suite("Outcomes of earlier runs", .timeLimit(.minutes(2)))
struct NodeOutcomeRestartTests {
    @Test("after a restart, outcome(of:) gives each earlier message's real outcome: a rejection stays a rejection, with its reason")
    func outcomeAfterRestart() async throws {
        let directory = TemporaryDirectory("outcome-restart")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let first = try await startSender(in: directory, to: endpoint)
        let consumer = Task {
            await receive(3, from: receiver) { message in
                if message.sequence == 2 { message.reject(reason: "bad invoice №2") } else { message.acknowledge() }
            }
        }
        let ids = try await first.send(batch: [Array("a".utf8), Array("b".utf8), Array("c".utf8)], to: "r").map(\.id)
        _ = try await within(.seconds(20), "delivery") { await consumer.value }
        try await within(.seconds(10), "drain") { try await first.waitUntilDelivered(to: "r") }
        await first.shutdown()

        let sender = try await startSender(in: directory, to: endpoint)
        var outcomes: [Outcome] = []
        for id in ids { outcomes.append(try await within(.seconds(5), "outcome") { try await sender.outcome(of: id) }) }
        #expect(outcomes == [.processed, .rejected(reason: "bad invoice №2"), .processed])

        let never = MessageID(peer: "r", stream: ids[0].stream, sequence: 4)
        await #expect(throws: CourierError.self) { try await sender.outcome(of: never) }
        do { _ = try await sender.outcome(of: never) } catch { #expect(error.code == .unknownMessage) }
        let otherStream = MessageID(peer: "r", stream: ids[0].stream &+ 1, sequence: 1)
        do { _ = try await sender.outcome(of: otherStream) } catch { #expect(error.code == .unknownMessage) }
        do { _ = try await sender.outcome(of: MessageID(peer: "nobody", stream: 1, sequence: 1)) } catch { #expect(error.code == .unknownPeer) }
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a number dead-lettered by an earlier run whose spool still holds it is finished as decided: reported rejected, never delivered again")
    func decidedBeforeCrash() async throws {
        let directory = TemporaryDirectory("decided-before-crash")
        defer { directory.cleanup() }
        // What a crash can leave: the dead letter of number 2 stored, the spool's
        // acknowledged mark not yet moved past it (it moves lazily, after the dead letter).
        let stream: UInt64 = try {
            let spool = try DataDirectory(path: FilePath(directory.sub("s")))
            defer { spool.close() }
            let log = try spool.outboundLog(for: "r")
            _ = try log.appendAndWait(contentsOf: ["a", "b", "c"].map { SpoolEntry(payload: Array($0.utf8)) })
            let second = try #require(try log.readPending(from: 2, limit: 1).first)
            try log.deadLetters.add(second, streamID: log.streamID, reason: .rejected("refused by an earlier run"))
            return log.streamID
        }()
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await startSender(in: directory, to: endpoint)
        let delivered = try await within(.seconds(20), "delivery") { await receive(2, from: receiver) }
        #expect(delivered.map { String(decoding: $0.payload, as: UTF8.self) } == ["a", "c"])
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        var outcomes: [Outcome] = []
        for sequence in 1...3 as ClosedRange<UInt64> {
            outcomes.append(try await sender.outcome(of: MessageID(peer: "r", stream: stream, sequence: sequence)))
        }
        #expect(outcomes == [.processed, .rejected(reason: "refused by an earlier run"), .processed])
        #expect(sender.statistics(for: "r")?.processed == 2)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a rejection the sender never heard survives a receiver restart: the restarted receiver tells the restarted sender, before its WELCOME")
    func verdictSurvivesReceiverRestart() async throws {
        let directory = TemporaryDirectory("verdict-receiver-restart")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let before = try await startReceiver(in: directory, listening: endpoint)
        let first = try await startSender(in: directory, to: endpoint)
        let id = try await first.send(Array("late order".utf8), to: "r").id
        let held = try await within(.seconds(20), "delivery") { await receive(1, from: before) { _ in } }
        // The sender goes away before the application decides: the OUTCOMES frame cannot go.
        await first.shutdown(timeout: .milliseconds(50))
        held[0].reject(reason: "arrivée trop tard")
        let old = before.core.directory.inbound
        try await within(.seconds(10), "the verdict is durable") {
            while old.verdicts(sender: "s", streamID: id.stream).isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        }
        await before.shutdown()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let store = receiver.core.directory.inbound
        #expect(store.verdicts(sender: "s", streamID: id.stream)[id.sequence]?.reason == "arrivée trop tard", "read back from the journal")
        let sender = try await startSender(in: directory, to: endpoint)
        let outcome = try await within(.seconds(20), "outcome") { try await sender.outcome(of: id) }
        #expect(outcome == .rejected(reason: "arrivée trop tard"))
        // Heard: the next HELLO lets the receiver forget it.
        await sender.shutdown()
        let again = try await startSender(in: directory, to: endpoint)
        try await within(.seconds(10), "the verdict is forgotten") {
            while !store.verdicts(sender: "s", streamID: id.stream).isEmpty {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        await again.shutdown()
        await receiver.shutdown()
    }
}
