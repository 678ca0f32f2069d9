import Testing
@testable import ZeroMQ

@Suite("Socket monitor events", .timeLimit(.minutes(1)))
struct MonitorTests {
    @Test("connect, handshake and disconnect are reported as values")
    func connectAndDisconnect() async throws {
        try await onSocketThread {
            let context = try Context()
            let (router, endpoint) = try boundRouter(context)
            let routerMonitor = try router.monitor()
            let dealer = try Socket(.dealer, context: context)
            let monitor = try dealer.monitor()
            try dealer.connect(endpoint)

            let seen = try #require(try waitForEvent(monitor) { $0 == .handshakeSucceeded })
            #expect(seen.contains { $0.kind == .connected && $0.endpoint == endpoint })
            #expect(try waitForEvent(routerMonitor) { $0 == .accepted } != nil)

            router.close()
            #expect(try waitForEvent(monitor) { $0 == .disconnected } != nil)
        }
    }

    @Test("monitor frames that are not libzmq's format decode to nothing")
    func malformedFrames() {
        #expect(MonitorEvent(frames: []) == nil)
        #expect(MonitorEvent(frames: [[1, 0, 0, 0, 0, 0]]) == nil)
        #expect(MonitorEvent(frames: [[1, 0, 0], bytes("tcp://x")]) == nil)
        let event = MonitorEvent(frames: [[0xFF, 0x7F, 1, 0, 0, 0], bytes("tcp://x")])
        #expect(event?.kind == .unknown(event: 0x7FFF, value: 1))
        let retried = MonitorEvent(frames: [[4, 0, 200, 0, 0, 0], bytes("tcp://y")])
        #expect(retried?.kind == .connectRetried(after: .milliseconds(200)))
    }
}
