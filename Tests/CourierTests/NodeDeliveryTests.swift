import Foundation
import Testing
import TestSupport
@testable import Courier

@Suite("Two nodes in one process", .timeLimit(.minutes(2)))
struct NodeDeliveryTests {
    @Test("messages arrive once, in order, and every receipt reports processed")
    func inOrderDelivery() async throws {
        let directory = TemporaryDirectory("delivery")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await Node.start(configuration(id: "receiver", directory: directory.sub("r"), listen: [endpoint]))
        let sender = try await Node.start(configuration(id: "sender", directory: directory.sub("s"),
                                                        peers: [PeerConfiguration(id: "receiver", endpoints: [endpoint])]))
        let count = 500
        let collector = Task { await receive(count, from: receiver) }
        var receipts: [Receipt] = []
        for n in 1...count {
            receipts.append(try await sender.send(Array("message \(n)".utf8), to: "receiver"))
        }
        let received = try await within(.seconds(30), "delivery of \(count) messages") { await collector.value }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...count).map { "message \($0)" })
        #expect(received.map(\.sequence) == (1...UInt64(count)).map { $0 })
        #expect(received.allSatisfy { !$0.redelivered && $0.sender == "sender" })
        for receipt in receipts.suffix(10) {
            #expect(try await within(.seconds(10), "outcome") { try await receipt.outcome() } == .processed)
        }
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "receiver") }
        let statistics = try #require(sender.statistics(for: "receiver"))
        #expect(statistics.stream == receipts[0].id.stream)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("an iteration that stops half-way leaves the rest of a handed-over batch to the next one")
    func iterationResumes() async throws {
        let directory = TemporaryDirectory("resume")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await Node.start(configuration(id: "receiver", directory: directory.sub("r"), listen: [endpoint]))
        let sender = try await Node.start(configuration(id: "sender", directory: directory.sub("s"),
                                                        peers: [PeerConfiguration(id: "receiver", endpoints: [endpoint])]))
        // One spool write, one DATA frame: the receiver hands them over in one batch.
        let count = 200
        _ = try await sender.send(batch: (1...count).map { Array("m\($0)".utf8) }, to: "receiver")
        var sequences: [UInt64] = []
        try await within(.seconds(30), "the first 10") {
            var taken: [UInt64] = []
            for await message in receiver.messages {
                message.acknowledge()
                taken.append(message.sequence)
                if taken.count == 10 { break }
            }
            return taken
        }.forEach { sequences.append($0) }
        let rest = try await within(.seconds(30), "the other \(count - 10)") { await receive(count - 10, from: receiver) }
        sequences += rest.map(\.sequence)
        #expect(sequences == (1...UInt64(count)).map { $0 })
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "receiver") }
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("messages near the size limit go in frames the receiver accepts, and all arrive")
    func largeMessages() async throws {
        let directory = TemporaryDirectory("large")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await Node.start(configuration(id: "receiver", directory: directory.sub("r"), listen: [endpoint]))
        let sender = try await Node.start(configuration(id: "sender", directory: directory.sub("s"),
                                                        peers: [PeerConfiguration(id: "receiver", endpoints: [endpoint])]))
        // Forty 900 KiB messages, sent one by one (the sender then holds several at once to
        // send without reading them back): far more than one frame may carry.
        let count = 40
        let payloads = (0..<count).map { [UInt8](repeating: UInt8($0), count: 900 << 10) }
        let disconnects = Locked(0)
        let watcher = Task {
            for await event in sender.events {
                if case .peerDisconnected = event { disconnects.withLock { $0 += 1 } }
            }
        }
        for payload in payloads { _ = try await sender.send(payload, to: "receiver") }
        let received = try await within(.seconds(60), "delivery of \(count) large messages") { await receive(count, from: receiver) }
        #expect(received.map(\.payload) == payloads)
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "receiver") }
        // No frame was too large for the receiver's socket (which drops such a connection).
        #expect(disconnects.withLock { $0 } == 0)
        await sender.shutdown()
        watcher.cancel()
        await receiver.shutdown()
    }
}
