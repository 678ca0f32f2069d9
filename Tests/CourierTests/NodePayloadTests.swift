import Foundation
import Testing
@testable import Courier

private struct Order: Codable, Equatable {
    var id: Int
    var customer: String
    var lines: [String]
}

@Suite("Typed payloads: bytes, Data, String and Codable values end to end", .timeLimit(.minutes(2)))
struct NodePayloadTests {
    @Test("every payload convenience round-trips through two nodes")
    func roundTrips() async throws {
        let directory = TemporaryDirectory("payloads")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await startSender(in: directory, to: endpoint)
        let order = Order(id: 7, customer: "Zoë", lines: ["book", "pen"])
        let bytes: [UInt8] = [0, 1, 2, 255]
        var receipts: [Receipt] = []
        receipts.append(try await sender.send(bytes, to: "r"))
        receipts.append(try await sender.send(bytes[1...], to: "r"))                    // ArraySlice
        receipts.append(try await sender.send(ContiguousArray(bytes), to: "r"))
        receipts.append(try await sender.send(Data("data ✓".utf8), to: "r"))
        receipts.append(try await sender.send("text ✓", to: "r"))
        receipts.append(try await sender.send(order, to: "r", encoder: JSONEncoder()))
        let received = try await within(.seconds(20), "six messages") { await receive(6, from: receiver) }
        #expect(received[0].payload == bytes)
        #expect(received[1].payload == [1, 2, 255])
        #expect(received[2].payload == bytes)
        #expect(received[3].data == Data("data ✓".utf8))
        #expect(received[4].string == "text ✓")
        #expect(received[0].string == nil)  // 255 is not UTF-8
        #expect(try received[5].decode(Order.self, decoder: JSONDecoder()) == order)
        let decoded: Order = try received[5].decode(decoder: JSONDecoder())
        #expect(decoded == order)
        #expect(try await receipts.outcomes() == Array(repeating: .processed, count: 6))
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a value that cannot be encoded is refused with .encoding and nothing is stored")
    func encodingFailure() async throws {
        let directory = TemporaryDirectory("encoding")
        defer { directory.cleanup() }
        let sender = try await startSender(in: directory, to: freeLoopbackEndpoint())
        let error = await #expect(throws: CourierError.self) {
            _ = try await sender.send([Double.nan], to: "r", encoder: JSONEncoder())
        }
        #expect(error?.code == .encoding)
        #expect(error?.message.contains("nothing was stored") == true)
        try await within(.seconds(5), "statistics published") {
            while sender.statistics(for: "r") == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(sender.statistics(for: "r")?.pending == 0)
        await sender.shutdown(timeout: .zero)
    }

    @Test("a payload that is not the expected type throws the decoder's error and leaves the message to settle")
    func decodingFailure() async throws {
        let directory = TemporaryDirectory("decoding")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await startSender(in: directory, to: endpoint)
        let receipt = try await sender.send("not an order", to: "r")
        let received = try await within(.seconds(20), "one message") {
            await receive(1, from: receiver) { message in
                do {
                    _ = try message.decode(Order.self, decoder: JSONDecoder())
                    message.acknowledge()
                } catch {
                    message.reject(reason: "not an Order: \(error)")
                }
            }
        }
        #expect(received.count == 1)
        guard case .rejected(let reason) = try await receipt.outcome() else {
            Issue.record("expected a rejection"); return
        }
        #expect(reason.hasPrefix("not an Order"))
        await sender.shutdown()
        await receiver.shutdown()
    }
}
