import Foundation
import Testing
import TestSupport
@testable import Courier

/// Headers end to end, the limits a receiver announces, and nodes of protocol versions 1 and 2
/// together. A node capped at version 1 (`latestProtocolVersion = 1`) refuses version-2
/// frames and answers them with VERSIONS [1], exactly as a release from before version 2 does.
@Suite("Protocol version 2 between nodes", .timeLimit(.minutes(2)))
struct NodeProtocolVersionTests {
    func pair(_ directory: TemporaryDirectory, sender senderVersion: UInt8 = 2, receiver receiverVersion: UInt8 = 2,
              receiverMaxMessageSize: Int? = nil) async throws -> (sender: Node, receiver: Node) {
        let endpoint = freeLoopbackEndpoint()
        var receiving = configuration(id: "receiver", directory: directory.sub("r"), listen: [endpoint])
        receiving.latestProtocolVersion = receiverVersion
        if let receiverMaxMessageSize { receiving.maxMessageSize = receiverMaxMessageSize }
        var sending = configuration(id: "sender", directory: directory.sub("s"), peers: [PeerConfiguration(id: "receiver", endpoints: [endpoint])])
        sending.latestProtocolVersion = senderVersion
        return (try await Node.start(sending), try await Node.start(receiving))
    }

    @Test("headers travel with the message, in order, through the spool and the wire; messages without them have none")
    func headersRoundTrip() async throws {
        let directory = TemporaryDirectory("headers")
        defer { directory.cleanup() }
        let (sender, receiver) = try await pair(directory)
        let collector = Task { await receive(3, from: receiver) }
        let headers: MessageHeaders = ["content-type": "application/json", "traceparent": "00-4bf92f-00f067-01", "é": ""]
        _ = try await sender.send(Array("one".utf8), to: "receiver", headers: headers)
        _ = try await sender.send(Array("two".utf8), to: "receiver")
        let publisher = sender.publisher(to: "receiver")
        _ = try await publisher.send("three", headers: ["correlation-id": "42"]).stored()
        let received = try await within(.seconds(30), "three messages") { await collector.value }
        #expect(received.map(\.headers) == [headers, [:], ["correlation-id": "42"]])
        #expect(received[0].headers.names == ["content-type", "traceparent", "é"])
        #expect(sender.statistics(for: "receiver")?.protocolVersion == 2)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("headers that break a limit are refused at send with invalidHeaders, and nothing is stored")
    func invalidHeaders() async throws {
        let directory = TemporaryDirectory("bad-headers")
        defer { directory.cleanup() }
        let (sender, receiver) = try await pair(directory)
        for bad: MessageHeaders in [["": "x"], [String(repeating: "n", count: 256): ""],
                                    ["v": String(repeating: "v", count: 4097)],
                                    MessageHeaders((0..<65).map { ("h\($0)", "") })] {
            let error = await #expect(throws: CourierError.self) { try await sender.send([1], to: "receiver", headers: bad) }
            #expect(error?.code == .invalidHeaders)
        }
        #expect(sender.statistics(for: "receiver")?.pending == 0)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a receiver's smaller maximum message size is announced: send refuses above it, and a message already spooled is dead-lettered, not retried")
    func announcedMaximum() async throws {
        let directory = TemporaryDirectory("announced")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        var sending = configuration(id: "sender", directory: directory.sub("s"), peers: [PeerConfiguration(id: "receiver", endpoints: [endpoint])])
        sending.maxAttempts = 1_000
        let sender = try await Node.start(sending)
        // Spooled before the receiver ever said anything: 2 KiB is within the sender's limit.
        let large = try await sender.send([UInt8](repeating: 7, count: 2048), to: "receiver")
        let small = try await sender.send([1], to: "receiver")
        var receiving = configuration(id: "receiver", directory: directory.sub("r"), listen: [endpoint])
        receiving.maxMessageSize = 1024
        let receiver = try await Node.start(receiving)
        let collector = Task { await receive(1, from: receiver) }
        let outcome = try await within(.seconds(30), "the large message's outcome") { try await large.outcome() }
        guard case .deadLettered(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("maximum message size of 1024 bytes"))
        #expect(try await within(.seconds(30), "the small one") { try await small.outcome() } == .processed)
        #expect(try await within(.seconds(10), "delivery") { await collector.value }.map(\.payload) == [[1]])
        #expect(sender.statistics(for: "receiver")?.peerMaxMessageSize == 1024)
        let error = await #expect(throws: CourierError.self) { try await sender.send([UInt8](repeating: 7, count: 2048), to: "receiver") }
        #expect(error?.code == .messageTooLarge && error?.message.contains("announced") == true)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("mixed versions deliver everything, both ways: a version-2 sender falls back to a version-1 receiver; a version-1 sender is answered in version 1",
          arguments: [(UInt8(2), UInt8(1)), (UInt8(1), UInt8(2)), (UInt8(1), UInt8(1))])
    func mixedVersions(senderVersion: UInt8, receiverVersion: UInt8) async throws {
        let directory = TemporaryDirectory("mixed-\(senderVersion)-\(receiverVersion)")
        defer { directory.cleanup() }
        let (sender, receiver) = try await pair(directory, sender: senderVersion, receiver: receiverVersion)
        let count = 300
        let collector = Task {
            await receive(count, from: receiver) { message in
                if message.sequence % 10 == 0 { message.reject(reason: "tenth") } else { message.acknowledge() }
            }
        }
        let receipts = try await sender.send(batch: (1...count).map { Array("m\($0)".utf8) }, to: "receiver")
        let received = try await within(.seconds(30), "\(count) messages") { await collector.value }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...count).map { "m\($0)" })
        let outcomes = try await within(.seconds(30), "outcomes") { try await receipts.outcomes() }
        #expect(outcomes.enumerated().allSatisfy { index, outcome in
            (index + 1) % 10 == 0 ? outcome == .rejected(reason: "tenth") : outcome == .processed
        })
        #expect(sender.statistics(for: "receiver")?.protocolVersion == Int(min(senderVersion, receiverVersion)))
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a message with headers for a version-1 receiver is dead-lettered with a reason that says so; the others arrive")
    func headersToVersionOne() async throws {
        let directory = TemporaryDirectory("headers-v1")
        defer { directory.cleanup() }
        let (sender, receiver) = try await pair(directory, receiver: 1)
        let collector = Task { await receive(2, from: receiver) }
        let before = try await sender.send([1], to: "receiver")
        let tagged = try await sender.send([2], to: "receiver", headers: ["k": "v"])
        let after = try await sender.send([3], to: "receiver")
        let outcome = try await within(.seconds(30), "the tagged message's outcome") { try await tagged.outcome() }
        guard case .deadLettered(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("protocol version 1"))
        #expect(try await within(.seconds(30), "delivery") { await collector.value }.map(\.payload) == [[1], [3]])
        #expect(try await before.outcome() == .processed)
        #expect(try await after.outcome() == .processed)
        await sender.shutdown()
        await receiver.shutdown()
    }
}
