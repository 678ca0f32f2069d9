import Testing
@testable import ZeroMQ

@Suite("Typed socket options", .timeLimit(.minutes(1)))
struct OptionsTests {
    @Test("options read back what was set")
    func roundTrip() async throws {
        try await onSocketThread {
            let context = try Context()
            let socket = try Socket(.dealer, context: context)
            #expect(try socket.get(.linger) == .discard)
            try socket.set(.linger, .upTo(.milliseconds(250)))
            #expect(try socket.get(.linger) == .upTo(.milliseconds(250)))
            try socket.set(.linger, .forever)
            #expect(try socket.get(.linger) == .forever)

            try socket.set(.sendHighWaterMark, 7)
            try socket.set(.receiveHighWaterMark, 9)
            #expect(try socket.get(.sendHighWaterMark) == 7)
            #expect(try socket.get(.receiveHighWaterMark) == 9)

            try socket.set(.routingID, bytes("node-α"))
            #expect(try socket.get(.routingID) == bytes("node-α"))

            try socket.set(.receiveTimeout, .milliseconds(1500))
            #expect(try socket.get(.receiveTimeout) == .milliseconds(1500))
            try socket.set(.receiveTimeout, nil)
            #expect(try socket.get(.receiveTimeout) == nil)

            try socket.set(.reconnectInterval, .milliseconds(50))
            try socket.set(.reconnectIntervalMax, .seconds(2))
            #expect(try socket.get(.reconnectInterval) == .milliseconds(50))
            #expect(try socket.get(.reconnectIntervalMax) == .seconds(2))

            try socket.set(.heartbeatInterval, .seconds(1))
            try socket.set(.heartbeatTimeout, .seconds(3))
            try socket.set(.heartbeatTTL, .seconds(6))
            #expect(try socket.get(.heartbeatInterval) == .seconds(1))
            #expect(try socket.get(.heartbeatTimeout) == .seconds(3))
            #expect(try socket.get(.heartbeatTTL) == .seconds(6))

            try socket.set(.tcpKeepAlive, true)
            try socket.set(.tcpKeepAliveIdle, .seconds(30))
            #expect(try socket.get(.tcpKeepAlive))
            #expect(try socket.get(.tcpKeepAliveIdle) == .seconds(30))

            try socket.set(.immediate, true)
            #expect(try socket.get(.immediate))
            try socket.set(.maxMessageSize, 1 << 20)
            #expect(try socket.get(.maxMessageSize) == 1 << 20)
        }
    }

    @Test("write-only ROUTER options are accepted by a ROUTER")
    func routerOptions() async throws {
        try await onSocketThread {
            let context = try Context()
            let router = try Socket(.router, context: context)
            try router.set(.routerMandatory, true)
            try router.set(.routerHandover, true)
        }
    }

    @Test("values libzmq cannot hold are refused before reaching it")
    func invalidValues() async throws {
        try await onSocketThread {
            let context = try Context()
            let socket = try Socket(.dealer, context: context)
            let tooLong = #expect(throws: ZeroMQError.self) { try socket.set(.reconnectInterval, .seconds(10_000_000)) }
            #expect(tooLong?.code == .invalidArgument)
            #expect(tooLong?.subject == "ZMQ_RECONNECT_IVL")
            #expect(throws: ZeroMQError.self) { try socket.set(.reconnectInterval, .milliseconds(-5)) }
            // libzmq limits a routing id to 255 bytes.
            let idError = #expect(throws: ZeroMQError.self) {
                try socket.set(.routingID, [UInt8](repeating: 65, count: 256))
            }
            #expect(idError?.code == .invalidArgument)
        }
    }
}
