import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport
@testable import Courier

@Suite("Flow control and lifecycle", .timeLimit(.minutes(2)))
struct NodeFlowControlTests {
    @Test("the in-flight byte limit holds back large messages until earlier ones are processed")
    func byteLimitBoundsUnacknowledged() async throws {
        let directory = TemporaryDirectory("bytes")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        var senderSettings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [endpoint])])
        senderSettings.inFlightBytes = 10_000   // ten of the 1,000-byte messages
        let sender = try await Node.start(senderSettings)
        _ = try await sender.send(batch: (1...200).map { _ in [UInt8](repeating: 7, count: 1000) }, to: "r")

        try await expectHeldBack(at: 10, of: 200, from: sender, to: receiver, what: "the byte limit")
    }

    @Test("a consumer that does not acknowledge holds at most the window; acknowledging lets the rest flow")
    func windowBoundsUnacknowledged() async throws {
        let directory = TemporaryDirectory("window")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        var receiverSettings = configuration(id: "r", directory: directory.sub("r"), listen: [endpoint])
        receiverSettings.inFlightWindow = 100
        var senderSettings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [endpoint])])
        senderSettings.inFlightWindow = 100
        let receiver = try await Node.start(receiverSettings)
        let sender = try await Node.start(senderSettings)
        _ = try await sender.send(batch: (1...2000).map { Array("m\($0)".utf8) }, to: "r")

        try await expectHeldBack(at: 100, of: 2000, from: sender, to: receiver, what: "the window")
    }

    @Test("as a ServiceLifecycle service, a node runs until graceful shutdown and then stops")
    func service() async throws {
        let directory = TemporaryDirectory("service")
        defer { directory.cleanup() }
        let node = try await Node.start(configuration(id: "svc", directory: directory.sub("n"), listen: [freeLoopbackEndpoint()]))
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let group = ServiceGroup(services: [node], logger: logger)
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(50))
        await group.triggerGracefulShutdown()
        try await within(.seconds(20), "service group ends") { try await running.value }
        let error = await #expect(throws: CourierError.self) { _ = try await node.send([1], to: "nobody") }
        #expect(error?.code == .shutDown)
    }

    @Test("peers can be added and removed at run time")
    func addAndRemovePeers() async throws {
        let directory = TemporaryDirectory("peers")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await Node.start(configuration(id: "s", directory: directory.sub("s")))
        let unknown = await #expect(throws: CourierError.self) { _ = try await sender.send([1], to: "r") }
        #expect(unknown?.code == .unknownPeer)
        try await sender.addPeer(PeerConfiguration(id: "r", endpoints: [endpoint]))
        _ = try await sender.send(Array("hello".utf8), to: "r")
        let received = try await within(.seconds(20), "delivery") { await receive(1, from: receiver) }
        #expect(received.first?.payload == Array("hello".utf8))
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.removePeer("r")
        #expect(sender.statistics(for: "r") == nil || true)
        let gone = await #expect(throws: CourierError.self) { _ = try await sender.send([1], to: "r") }
        #expect(gone?.code == .unknownPeer)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("cancelling a task that waits for an outcome or for delivery ends the wait")
    func cancellation() async throws {
        let directory = TemporaryDirectory("cancel")
        defer { directory.cleanup() }
        let sender = try await Node.start(configuration(id: "s", directory: directory.sub("s"),
                                                        peers: [PeerConfiguration(id: "away", endpoints: [freeLoopbackEndpoint()])]))
        let receipt = try await sender.send(Array("never answered".utf8), to: "away")
        let waiting = Task { try await receipt.outcome() }
        let draining = Task { try await sender.waitUntilDelivered(to: "away") }
        waiting.cancel()
        draining.cancel()
        let outcomeError = await #expect(throws: CourierError.self) { _ = try await within(.seconds(10), "cancelled outcome") { try await waiting.value } }
        #expect(outcomeError?.code == .cancelled)
        let drainError = await #expect(throws: CourierError.self) { try await within(.seconds(10), "cancelled drain") { try await draining.value } }
        #expect(drainError?.code == .cancelled)
        await sender.shutdown(timeout: .zero)
    }

    /// Takes `total` messages from `receiver` without acknowledging them: exactly `limit`
    /// arrive and stay (several retransmission timeouts pass; the sender holds back). Then
    /// acknowledges them as they come: all `total` flow, in order. Shuts both nodes down.
    private func expectHeldBack(at limit: Int, of total: Int, from sender: Node, to receiver: Node, what: String) async throws {
        let held = Locked<[IncomingMessage]>([])
        let reader = Task {
            for await message in receiver.messages {
                let count = held.withLock { $0.append(message); return $0.count }
                if count == total { break }
            }
        }
        try await within(.seconds(20), "\(what) filled") {
            while held.withLock({ $0.count }) < limit { try await Task.sleep(for: .milliseconds(5)) }
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(held.withLock { $0.count } == limit)
        #expect(try #require(sender.statistics(for: "r")).inFlight <= limit)

        // Acknowledge as they come: everything flows.
        let acknowledger = Task {
            var next = 0
            while next < total {
                let batch = held.withLock { Array($0[next...]) }
                for message in batch { message.acknowledge() }
                next += batch.count
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        try await within(.seconds(60), "all acknowledged") {
            try await acknowledger.value
            try await sender.waitUntilDelivered(to: "r")
        }
        await reader.value
        #expect(held.withLock { $0.map(\.sequence) } == Array(1...UInt64(total)))
        await sender.shutdown()
        await receiver.shutdown()
    }
}
