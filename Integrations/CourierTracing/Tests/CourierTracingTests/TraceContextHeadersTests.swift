import Courier
import CourierTracing
import Foundation
import Instrumentation
import Testing

/// A trace id under a header of its own: enough to show what goes where.
private enum TraceID: ServiceContextKey {
    typealias Value = String
}

private struct TestInstrument: Instrument {
    func inject<Carrier, Inject>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Inject.Carrier == Carrier {
        if let id = context[TraceID.self] { injector.inject("00-\(id)-01", forKey: "traceparent", into: &carrier) }
    }

    func extract<Carrier, Extract>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract: Extractor, Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier) else { return }
        context[TraceID.self] = String(value.dropFirst(3).dropLast(3))
    }
}

/// The instrument is process-wide and can be bootstrapped once; nothing else in the test
/// process uses one.
private let bootstrapped: Void = InstrumentationSystem.bootstrap(TestInstrument())

@Suite("Trace context in headers (CourierTracing)", .timeLimit(.minutes(1)))
struct TraceContextHeadersTests {
    init() { _ = bootstrapped }

    @Test("injecting adds what the instrument propagates, keeps the given headers, and nil changes nothing")
    func injecting() {
        var context = ServiceContext.topLevel
        context[TraceID.self] = "4bf92f3577b34da6"
        let headers = (["content-type": "text/plain"] as MessageHeaders).injecting(context)
        #expect(headers.names == ["content-type", "traceparent"])
        #expect(headers["traceparent"] == "00-4bf92f3577b34da6-01")
        let given: MessageHeaders = ["traceparent": "mine"]
        #expect(given.injecting(context)["traceparent"] == "mine")
        #expect(given.injecting(nil) == given)
        #expect((MessageHeaders()).injecting(.topLevel).isEmpty)
    }

    @Test("the trace context travels from the sender's context to the receiver's, through the spool and the wire")
    func acrossNodes() async throws {
        let directory = NSTemporaryDirectory() + "courier-tracing-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let endpoint = "ipc://\(directory)/r.sock"
        var receiving = NodeConfiguration(id: "r", dataDirectory: directory + "/r")
        receiving.listen = [endpoint]
        var sending = NodeConfiguration(id: "s", dataDirectory: directory + "/s")
        sending.peers = [PeerConfiguration(id: "r", endpoints: [endpoint])]
        let receiver = try await Node.start(receiving)
        let sender = try await Node.start(sending)
        var context = ServiceContext.topLevel
        context[TraceID.self] = "0af7651916cd43dd"
        _ = try await sender.send(Array("traced".utf8), to: "r", headers: MessageHeaders().injecting(context))
        _ = try await sender.send(Array("plain".utf8), to: "r")
        let received = Task {
            var contexts: [String?] = []
            for await message in receiver.messages {
                contexts.append(message.serviceContext[TraceID.self])
                message.acknowledge()
                if contexts.count == 2 { break }
            }
            return contexts
        }
        let deadline = Task {
            try await Task.sleep(for: .seconds(30))
            received.cancel()
        }
        let contexts = await received.value
        deadline.cancel()
        #expect(contexts == ["0af7651916cd43dd", nil])
        await sender.shutdown()
        await receiver.shutdown()
    }
}
