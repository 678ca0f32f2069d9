import Foundation
import Testing
@testable @_spi(Testing) import Courier

@Suite("Restarts keep streams and deduplication", .timeLimit(.minutes(2)))
struct NodeRestartTests {
    @Test("a restarted receiver never redelivers what was acknowledged and flags what was handed out")
    func receiverRestart() async throws {
        let directory = TemporaryDirectory("receiver-restart")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let sender = try await startSender(in: directory, to: endpoint)
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let receipts = try await sender.send(batch: (1...20).map { Array("m\($0)".utf8) }, to: "r")
        let first = try await within(.seconds(20), "first delivery") {
            await receive(20, from: receiver) { if $0.sequence <= 10 { $0.acknowledge() } }
        }
        #expect(first.map(\.sequence) == Array(1...20))
        #expect(first.allSatisfy { !$0.redelivered })
        for receipt in receipts.prefix(10) {
            #expect(try await within(.seconds(10), "outcome") { try await receipt.outcome() } == .processed)
        }
        await receiver.shutdown()

        let restarted = try await startReceiver(in: directory, listening: endpoint)
        let again = try await within(.seconds(20), "redelivery") { await receive(10, from: restarted) }
        #expect(again.map(\.sequence) == Array(11...20))
        #expect(again.allSatisfy { $0.redelivered }, "handed out before the restart, so flagged")
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        for receipt in receipts {
            #expect(try await within(.seconds(10), "outcome") { try await receipt.outcome() } == .processed)
        }
        await sender.shutdown()
        await restarted.shutdown()
    }

    @Test("a restarted sender resumes its stream where it was")
    func senderRestart() async throws {
        let directory = TemporaryDirectory("sender-restart")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let peers = [PeerConfiguration(id: "r", endpoints: [endpoint])]
        let first = try await Node.start(configuration(id: "s", directory: directory.sub("s"), peers: peers))
        let before = try await first.send(batch: (1...5).map { Array("m\($0)".utf8) }, to: "r")
        await first.shutdown(timeout: .zero)
        let sender = try await Node.start(configuration(id: "s", directory: directory.sub("s"), peers: peers))
        let after = try await sender.send(batch: (6...10).map { Array("m\($0)".utf8) }, to: "r")
        #expect(Set((before + after).map(\.id.stream)).count == 1)
        #expect((before + after).map(\.id.sequence) == Array(1...10))
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let received = try await within(.seconds(20), "delivery") { await receive(10, from: receiver) }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...10).map { "m\($0)" })
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a sender whose spool was wiped starts a new stream that the receiver keeps apart")
    func wipedSender() async throws {
        let directory = TemporaryDirectory("wiped")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let peers = [PeerConfiguration(id: "r", endpoints: [endpoint])]
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let original = try await Node.start(configuration(id: "s", directory: directory.sub("s"), peers: peers))
        let old = try await original.send(batch: (1...3).map { Array("old\($0)".utf8) }, to: "r")
        let first = try await within(.seconds(20), "old stream") { await receive(3, from: receiver) }
        try await within(.seconds(10), "drain") { try await original.waitUntilDelivered(to: "r") }
        await original.shutdown()
        try FileManager.default.removeItem(atPath: directory.sub("s"))

        let sender = try await Node.start(configuration(id: "s", directory: directory.sub("s"), peers: peers))
        let new = try await sender.send(batch: (1...3).map { Array("new\($0)".utf8) }, to: "r")
        #expect(new[0].id.stream != old[0].id.stream)
        let second = try await within(.seconds(20), "new stream") { await receive(3, from: receiver) }
        #expect(second.map { String(decoding: $0.payload, as: UTF8.self) } == ["new1", "new2", "new3"])
        #expect(second.map(\.sequence) == [1, 2, 3])
        #expect(second.allSatisfy { $0.stream == new[0].id.stream && !$0.redelivered })
        #expect(first.allSatisfy { $0.stream == old[0].id.stream })
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a receiver shut down right after acknowledging still tells the sender")
    func shutdownFlushesAcknowledgements() async throws {
        let directory = TemporaryDirectory("flush-acks")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let sender = try await startSender(in: directory, to: endpoint)
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let receipts = try await sender.send(batch: (1...10).map { Array("m\($0)".utf8) }, to: "r")
        _ = try await within(.seconds(20), "delivery") { await receive(10, from: receiver) }
        await receiver.shutdown(timeout: .zero)
        for receipt in receipts {
            #expect(try await within(.seconds(10), "outcome") { try await receipt.outcome() } == .processed)
        }
        await sender.shutdown()
    }

    @Test("after a graceful stop and a reboot, only what was handed out and not acknowledged comes back flagged")
    func gracefulStopThenReboot() async throws {
        let directory = TemporaryDirectory("reboot")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let sender = try await startSender(in: directory, to: endpoint)
        func receiver(boot: UInt8) async throws -> Node {
            var settings = configuration(id: "r", directory: directory.sub("r"), listen: [endpoint])
            settings.bootIDForTesting = [UInt8](repeating: boot, count: 16)
            return try await Node.start(settings)
        }
        let first = try await receiver(boot: 1)
        _ = try await sender.send(batch: (1...20).map { Array("m\($0)".utf8) }, to: "r")
        // Take eight, acknowledge five; the other twelve wait in the node's hand-out buffer.
        let taken = try await within(.seconds(20), "eight") { await receive(8, from: first) { if $0.sequence <= 5 { $0.acknowledge() } } }
        #expect(taken.map(\.sequence) == Array(1...8))
        try await within(.seconds(10), "five processed") {
            while (sender.statistics(for: "r")?.processed ?? 0) < 5 { try await Task.sleep(for: .milliseconds(5)) }
        }
        await first.shutdown()

        let rebooted = try await receiver(boot: 2)
        let rest = try await within(.seconds(20), "the rest") { await receive(15, from: rebooted) }
        #expect(rest.map(\.sequence) == Array(6...20))
        #expect(rest.filter(\.redelivered).map(\.sequence) == [6, 7, 8], "only the taken, unacknowledged ones are flagged")
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        // Everything was taken and acknowledged: after another stop and reboot, nothing new
        // is flagged (the reservation ceiling ran ahead, and the stop brought it back).
        await rebooted.shutdown()
        let again = try await receiver(boot: 3)
        _ = try await sender.send(batch: (21...25).map { Array("m\($0)".utf8) }, to: "r")
        let later = try await within(.seconds(20), "five more") { await receive(5, from: again) }
        #expect(later.map(\.sequence) == Array(21...25))
        #expect(later.allSatisfy { !$0.redelivered })
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.shutdown()
        await again.shutdown()
    }

    @Test("messages buffered for the application but never taken come back unflagged after a graceful restart")
    func untakenMessagesAreNotFlagged() async throws {
        let directory = TemporaryDirectory("untaken")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let sender = try await startSender(in: directory, to: endpoint)
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        _ = try await sender.send(batch: (1...20).map { Array("m\($0)".utf8) }, to: "r")
        // Take and acknowledge five; the other fifteen wait in the node's hand-out buffer.
        let first = try await within(.seconds(20), "five") { await receive(5, from: receiver) }
        #expect(first.map(\.sequence) == Array(1...5))
        try await within(.seconds(10), "the rest buffered") {
            while (sender.statistics(for: "r")?.processed ?? 0) < 5 { try await Task.sleep(for: .milliseconds(5)) }
        }
        await receiver.shutdown()
        var afterStop = 0
        for await _ in receiver.messages { afterStop += 1 }
        #expect(afterStop == 0, "a stopping node hands nothing more to the application")

        let restarted = try await startReceiver(in: directory, listening: endpoint)
        let rest = try await within(.seconds(20), "the rest") { await receive(15, from: restarted) }
        #expect(rest.map(\.sequence) == Array(6...20))
        #expect(rest.allSatisfy { !$0.redelivered }, "never handed to the application, so not flagged")
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.shutdown()
        await restarted.shutdown()
    }
}
