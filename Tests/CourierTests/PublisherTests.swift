import Foundation
import Testing
import TestSupport
@testable import Courier

@Suite("Publisher: a send loop that does not wait for each sync", .timeLimit(.minutes(2)))
struct PublisherTests {
    @Test("single sends from one loop are stored in order under consecutive numbers, in batches, delivered once each; flush waits for all")
    func loopInOrder() async throws {
        let directory = TemporaryDirectory("publisher-order")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await startSender(in: directory, to: endpoint)
        let count = 3_000
        let consumer = Task { await receive(count, from: receiver) }
        let publisher = sender.publisher(to: "r")
        var pending: [PendingReceipt] = []
        for index in 1...count { pending.append(try await publisher.send(Array("p\(index)".utf8))) }
        try await within(.seconds(20), "flush") { try await publisher.flush() }
        #expect(publisher.unstoredCount == 0)
        var receipts: [Receipt] = []
        for item in pending { receipts.append(try await item.stored()) }
        let sequences = receipts.map(\.id.sequence)
        #expect(sequences == Array(sequences[0]..<(sequences[0] + UInt64(count))))
        // The loop did not wait for each sync: messages shared appends.
        let appends = Set(pending.map { ObjectIdentifier($0.batch) }).count
        #expect(appends < count / 2, "\(appends) appends for \(count) messages")
        let received = try await within(.seconds(30), "delivery") { await consumer.value }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...count).map { "p\($0)" })
        let last = pending[count - 1]
        #expect(try await within(.seconds(10), "outcome") { try await last.outcome() } == .processed)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("no more than maxUnstoredMessages are ever accepted and unstored; a message too large is refused and the publisher goes on")
    func backPressureAndSize() async throws {
        let directory = TemporaryDirectory("publisher-limit")
        defer { directory.cleanup() }
        let sender = try await startSender(in: directory, to: freeLoopbackEndpoint())
        let publisher = sender.publisher(to: "r", maxUnstoredMessages: 4)
        #expect(publisher.maxUnstoredMessages == 4)
        var highest = 0
        for index in 0..<400 {
            try await publisher.send(Array("m\(index)".utf8))
            highest = max(highest, publisher.unstoredCount)
        }
        #expect(highest <= 4)
        await #expect(throws: CourierError.self) {
            try await publisher.send([UInt8](repeating: 0, count: sender.core.configuration.maxMessageSize + 1))
        }
        let last = try await publisher.send(Array("after".utf8))
        try await within(.seconds(20), "flush") { try await publisher.flush() }
        #expect(try await last.stored().id.sequence == 401)
        await sender.shutdown(timeout: .zero)
    }

    @Test("after a failed write nothing later is stored: what was stored is a prefix of what was accepted, and the publisher stays failed")
    func failureKeepsAPrefix() async throws {
        let directory = TemporaryDirectory("publisher-fail")
        defer { directory.cleanup() }
        let sender = try await startSender(in: directory, to: freeLoopbackEndpoint())
        let publisher = sender.publisher(to: "r", maxUnstoredMessages: 64)
        var pending: [PendingReceipt] = []
        var thrown: CourierError?
        // Sends go on until the publisher learns of the failed write (it must, once it
        // waits for room): the deadline is the test's time limit.
        for index in 0... {
            if index == 500 { await sender.removePeer("r") }
            do {
                pending.append(try await publisher.send(Array("m\(index)".utf8)))
            } catch {
                thrown = error
                break
            }
        }
        await #expect(throws: CourierError.self) { try await within(.seconds(10), "flush") { try await publisher.flush() } }
        var results: [Bool] = []
        for item in pending {
            do {
                _ = try await within(.seconds(10), "stored") { try await item.stored() }
                results.append(true)
            } catch {
                results.append(false)
            }
        }
        let firstFailure = results.firstIndex(of: false) ?? results.count
        #expect(!results[firstFailure...].contains(true), "a message was stored after one that failed")
        #expect(firstFailure >= 500 - 64 && firstFailure <= 500 + 64, "first failure at \(firstFailure)")
        #expect(thrown?.code == .unknownPeer)
        await #expect(throws: CourierError.self) { try await publisher.send(Array("later".utf8)) }
        await sender.shutdown(timeout: .zero)
    }

    @Test("a publisher to a peer that is not configured fails at the first send")
    func unknownPeer() async throws {
        let directory = TemporaryDirectory("publisher-unknown")
        defer { directory.cleanup() }
        let sender = try await startSender(in: directory, to: freeLoopbackEndpoint())
        let publisher = sender.publisher(to: "nobody")
        await #expect(throws: CourierError.self) { try await publisher.send(Array("x".utf8)) }
        await #expect(throws: CourierError.self) { try await publisher.flush() }
        await sender.shutdown(timeout: .zero)
    }

    @Test("text, Data, byte slices and Encodable values go through a publisher; an unencodable value is refused and the publisher goes on")
    func payloadForms() async throws {
        struct Order: Codable, Equatable { var id: Int }
        struct Unencodable: Encodable {
            func encode(to encoder: any Encoder) throws { throw EncodingError.invalidValue(0, .init(codingPath: [], debugDescription: "no")) }
        }
        let directory = TemporaryDirectory("publisher-forms")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await startSender(in: directory, to: endpoint)
        let consumer = Task { await receive(4, from: receiver) }
        let publisher = sender.publisher(to: "r")
        try await publisher.send("text")
        try await publisher.send(Data("data".utf8))
        try await publisher.send(Array("a slice!".utf8)[0..<5])
        await #expect(throws: CourierError.self) { try await publisher.send(Unencodable(), encoder: JSONEncoder()) }
        try await publisher.send(Order(id: 7), encoder: JSONEncoder())
        try await within(.seconds(20), "flush") { try await publisher.flush() }
        let received = try await within(.seconds(20), "delivery") { await consumer.value }
        #expect(received.prefix(3).map(\.string) == ["text", "data", "a sli"])
        #expect(try received[3].decode(Order.self, decoder: JSONDecoder()) == Order(id: 7))
        await sender.shutdown()
        await receiver.shutdown()
    }
}
