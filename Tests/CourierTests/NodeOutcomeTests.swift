import CourierSpool
import Foundation
import Testing
import TestSupport
@testable import Courier

@Suite("Delivery outcomes and limits", .timeLimit(.minutes(2)))
struct NodeOutcomeTests {
    @Test("two nodes send to each other over their own connections")
    func twoWay() async throws {
        let directory = TemporaryDirectory("two-way")
        defer { directory.cleanup() }
        let (a, b) = (freeLoopbackEndpoint(), freeLoopbackEndpoint())
        let alice = try await Node.start(configuration(id: "alice", directory: directory.sub("a"), listen: [a],
                                                       peers: [PeerConfiguration(id: "bob", endpoints: [b])]))
        let bob = try await Node.start(configuration(id: "bob", directory: directory.sub("b"), listen: [b],
                                                     peers: [PeerConfiguration(id: "alice", endpoints: [a])]))
        let toBob = Task { await receive(50, from: bob) }
        let toAlice = Task { await receive(50, from: alice) }
        _ = try await alice.send(batch: (1...50).map { Array("a\($0)".utf8) }, to: "bob")
        _ = try await bob.send(batch: (1...50).map { Array("b\($0)".utf8) }, to: "alice")
        let atBob = try await within(.seconds(20), "bob receives") { await toBob.value }
        let atAlice = try await within(.seconds(20), "alice receives") { await toAlice.value }
        #expect(atBob.map { String(decoding: $0.payload, as: UTF8.self) } == (1...50).map { "a\($0)" })
        #expect(atAlice.map { String(decoding: $0.payload, as: UTF8.self) } == (1...50).map { "b\($0)" })
        #expect(atBob.allSatisfy { $0.sender == "alice" } && atAlice.allSatisfy { $0.sender == "bob" })
        try await within(.seconds(10), "drain") {
            try await alice.waitUntilDelivered(to: "bob")
            try await bob.waitUntilDelivered(to: "alice")
        }
        await alice.shutdown()
        await bob.shutdown()
    }

    @Test("a rejected message reaches the sender as rejected, with the reason, and is dead-lettered")
    func rejection() async throws {
        let directory = TemporaryDirectory("reject")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await startSender(in: directory, to: endpoint)
        let consumer = Task {
            await receive(5, from: receiver) { message in
                if message.sequence == 3 { message.reject(reason: "bad invoice") } else { message.acknowledge() }
            }
        }
        let receipts = try await sender.send(batch: (1...5).map { Array("m\($0)".utf8) }, to: "r")
        _ = try await within(.seconds(20), "delivery") { await consumer.value }
        var outcomes: [Outcome] = []
        for receipt in receipts { outcomes.append(try await within(.seconds(10), "outcome") { try await receipt.outcome() }) }
        #expect(outcomes == [.processed, .processed, .rejected(reason: "bad invoice"), .processed, .processed])
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        let statistics = try #require(sender.statistics(for: "r"))
        #expect(statistics.rejected == 1)
        let deadLetters = try await sender.core.directory.outboundLog(for: "r").deadLetters.list()
        #expect(deadLetters.map { String(decoding: $0.record.payload, as: UTF8.self) } == ["m3"])
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a batch's outcomes awaited together, before any is known, come back in order, rejection included")
    func batchOutcomes() async throws {
        let directory = TemporaryDirectory("batch-outcomes")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let sender = try await startSender(in: directory, to: endpoint)
        let receipts = try await sender.send(batch: (1...300).map { Array("m\($0)".utf8) }, to: "r")
        // Waiting starts while the receiver does not exist yet: nothing is known.
        let waiting = Task { try await receipts.outcomes() }
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let consumer = Task {
            await receive(300, from: receiver) { message in
                if message.sequence == 150 { message.reject(reason: "odd one") } else { message.acknowledge() }
            }
        }
        _ = try await within(.seconds(20), "delivery") { await consumer.value }
        let together = try await within(.seconds(10), "outcomes") { try await waiting.value }
        var expected = [Outcome](repeating: .processed, count: 300)
        expected[149] = .rejected(reason: "odd one")
        #expect(together == expected)
        // Known ones are read again the same way; one by one gives the same.
        #expect(try await receipts.outcomes() == expected)
        var oneByOne: [Outcome] = []
        for receipt in receipts { oneByOne.append(try await receipt.outcome()) }
        #expect(oneByOne == expected)
        #expect(try await [Receipt]().outcomes().isEmpty)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("removing a peer ends every wait on its outcomes, later ones too; adding it back resumes delivery")
    func removedPeerOutcomes() async throws {
        let directory = TemporaryDirectory("removed-peer")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let peer = PeerConfiguration(id: "r", endpoints: [endpoint])
        let sender = try await Node.start(configuration(id: "s", directory: directory.sub("s"), peers: [peer]))
        let receipts = try await sender.send(batch: [Array("one".utf8), Array("two".utf8)], to: "r")
        let waiting = Task { try await receipts.outcomes() }
        await sender.removePeer("r")
        let attempts: [@Sendable () async throws -> [Outcome]] = [{ try await waiting.value }, { try await receipts.outcomes() }]
        for attempt in attempts {
            do {
                _ = try await within(.seconds(10), "outcome after removePeer") { try await attempt() }
                Issue.record("an outcome was returned for a removed peer")
            } catch let error as CourierError {
                #expect(error.code == .unknownPeer)
            }
        }
        // Added back: the spool is still there, delivery resumes and the outcomes come.
        try await sender.addPeer(peer)
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        _ = try await within(.seconds(20), "delivery") { await receive(2, from: receiver) }
        #expect(try await within(.seconds(10), "outcomes") { try await receipts.outcomes() } == [.processed, .processed])
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a message whose time-to-live passes while the peer is away expires and is never delivered")
    func expiry() async throws {
        let directory = TemporaryDirectory("expiry")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let sender = try await startSender(in: directory, to: endpoint)
        let short = try await sender.send(Array("short-lived".utf8), to: "r", timeToLive: .milliseconds(1))
        let lasting = try await sender.send(Array("lasting".utf8), to: "r")
        try await Task.sleep(for: .milliseconds(20))  // the TTL itself, not a wait for an event
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let received = try await within(.seconds(20), "delivery") { await receive(1, from: receiver) }
        #expect(received.map(\.payload) == [Array("lasting".utf8)])
        #expect(received.first?.sequence == 2)
        #expect(try await within(.seconds(10), "outcome") { try await short.outcome() } == .expired)
        #expect(try await within(.seconds(10), "outcome") { try await lasting.outcome() } == .processed)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a full spool makes send throw spoolFull when so configured, and nothing stored is lost")
    func spoolFull() async throws {
        let directory = TemporaryDirectory("full")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [endpoint])])
        settings.maxSpoolMessages = 10
        settings.whenSpoolFull = .fail
        let sender = try await Node.start(settings)
        for n in 1...10 { _ = try await sender.send(Array("m\(n)".utf8), to: "r") }
        let error = await #expect(throws: CourierError.self) { _ = try await sender.send(Array("one too many".utf8), to: "r") }
        #expect(error?.code == .spoolFull)
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let received = try await within(.seconds(20), "delivery") { await receive(10, from: receiver) }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...10).map { "m\($0)" })
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("configuration mistakes fail start with a clear error")
    func badConfiguration() async throws {
        let directory = TemporaryDirectory("bad")
        defer { directory.cleanup() }
        let noID = await #expect(throws: CourierError.self) { _ = try await Node.start(configuration(id: "", directory: directory.sub("x"))) }
        #expect(noID?.code == .invalidConfiguration)
        let twice = await #expect(throws: CourierError.self) {
            _ = try await Node.start(configuration(id: "n", directory: directory.sub("y"), peers: [
                PeerConfiguration(id: "p", endpoints: ["tcp://127.0.0.1:1"]), PeerConfiguration(id: "p", endpoints: ["tcp://127.0.0.1:2"])]))
        }
        #expect(twice?.code == .invalidConfiguration)
        let badEndpoint = await #expect(throws: CourierError.self) {
            _ = try await Node.start(configuration(id: "n", directory: directory.sub("z"), listen: ["tcp://nonsense:xyz"]))
        }
        #expect(badEndpoint?.code == .invalidConfiguration)
        // The failed start released the directory: a second start works.
        let node = try await Node.start(configuration(id: "n", directory: directory.sub("z"), listen: [freeLoopbackEndpoint()]))
        let locked = await #expect(throws: CourierError.self) {
            _ = try await Node.start(configuration(id: "n", directory: directory.sub("z")))
        }
        #expect(locked?.code == .dataDirectoryLocked)
        #expect(locked?.description.contains("\(getpid())") == true)
        await node.shutdown()
    }
}
