import Testing
@testable import ZeroMQ

@Suite("CurveZMQ keys and encryption", .timeLimit(.minutes(1)), .enabled(if: Capabilities.hasCurve, "libzmq lacks CURVE"))
struct CurveTests {
    @Test("keys survive Z85 text and the public key is derived from the secret one")
    func keys() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.z85.count == 40)
        #expect(try CurveKey(z85: pair.publicKey.z85) == pair.publicKey)
        #expect(try CurveKey(z85: "  \(pair.secretKey.z85)\n") == pair.secretKey)
        #expect(try CurveKeyPair(secretKey: pair.secretKey).publicKey == pair.publicKey)
        #expect(pair != (try CurveKeyPair.generate()))
    }

    @Test("malformed key text is refused", arguments: ["", "short", String(repeating: "a", count: 39),
                                                       String(repeating: "~", count: 40), String(repeating: "a", count: 41)])
    func badKeys(text: String) {
        #expect(throws: ZeroMQError.self) { try CurveKey(z85: text) }
    }

    @Test("sockets with matching keys talk; with a wrong server key the handshake fails")
    func encryption() async throws {
        try await onSocketThread {
            let context = try Context()
            let server = try CurveKeyPair.generate()
            let router = try Socket(.router, context: context)
            try router.set(.curveServer, true)
            try router.set(.curveSecretKey, server.secretKey)
            let routerMonitor = try router.monitor()
            try router.bind("tcp://127.0.0.1:*")
            let endpoint = try #require(try router.lastEndpoint())

            func client(serverKey: CurveKey) throws -> Socket {
                let keys = try CurveKeyPair.generate()
                let dealer = try Socket(.dealer, context: context)
                try dealer.set(.curveServerKey, serverKey)
                try dealer.set(.curvePublicKey, keys.publicKey)
                try dealer.set(.curveSecretKey, keys.secretKey)
                try dealer.connect(endpoint)
                return dealer
            }

            let good = try client(serverKey: server.publicKey)
            try good.send([bytes("secret hello")])
            defer { withExtendedLifetime(good) {} }
            #expect(try receive(router)?.frames.last == bytes("secret hello"))

            let impostor = try client(serverKey: try CurveKeyPair.generate().publicKey)
            try impostor.send([bytes("should never arrive")])
            #expect(try waitForEvent(routerMonitor) { $0.isHandshakeFailure } != nil)
            defer { withExtendedLifetime(impostor) {} }
            #expect(try receive(router, within: .milliseconds(300)) == nil)
            #expect(try router.get(.curveServer))
        }
    }
}
