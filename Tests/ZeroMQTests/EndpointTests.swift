import Testing
@testable import ZeroMQ

@Suite("Binding, connecting and endpoint errors", .timeLimit(.minutes(1)))
struct EndpointTests {
    @Test("binding port * picks a free port and reports it")
    func wildcardPort() async throws {
        try await onSocketThread {
            let context = try Context()
            let router = try Socket(.router, context: context)
            #expect(try router.lastEndpoint() == nil)
            try router.bind("tcp://127.0.0.1:*")
            let endpoint = try #require(try router.lastEndpoint())
            #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
            let port = try #require(Int(endpoint.split(separator: ":").last ?? ""))
            #expect(port > 0)

            let dealer = try Socket(.dealer, context: context)
            try dealer.connect(endpoint)
            try dealer.send([bytes("found you")])
            #expect(try receive(router)?.frames.last == bytes("found you"))

            try router.unbind(endpoint)
            try dealer.disconnect(endpoint)
        }
    }

    @Test("unusable endpoints fail with a specific code that names the endpoint", arguments: [
        ("tcp://nonsense:xyz", ZeroMQError.Code.invalidEndpoint),
        ("tcp://127.0.0.1", .invalidEndpoint),
        ("bogus://somewhere", .protocolNotSupported),
    ])
    func invalidEndpoints(endpoint: String, code: ZeroMQError.Code) async throws {
        try await onSocketThread {
            let context = try Context()
            let socket = try Socket(.router, context: context)
            let error = #expect(throws: ZeroMQError.self) { try socket.bind(endpoint) }
            #expect(error?.code == code)
            #expect(error?.subject == endpoint)
            #expect(error?.description.contains(endpoint) == true)
            #expect(error?.errno != 0)
        }
    }

    @Test("a port already in use is reported as such")
    func addressInUse() async throws {
        try await onSocketThread {
            let context = try Context()
            let (first, endpoint) = try boundRouter(context)
            defer { withExtendedLifetime(first) {} }
            let second = try Socket(.router, context: context)
            let error = #expect(throws: ZeroMQError.self) { try second.bind(endpoint) }
            #expect(error?.code == .addressInUse)
            #expect(error?.description.contains("another process") == true)
        }
    }
}
