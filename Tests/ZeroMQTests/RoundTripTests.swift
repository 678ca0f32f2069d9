import Testing
@testable import ZeroMQ

@Suite("DEALER and ROUTER exchange messages", .timeLimit(.minutes(1)))
struct RoundTripTests {
    @Test("a ROUTER sees each DEALER's routing id and replies to one of them only")
    func routingIDs() async throws {
        try await onSocketThread {
            let context = try Context()
            let (router, endpoint) = try boundRouter(context)
            try router.set(.routerMandatory, true)
            var dealers: [Socket] = []
            for name in ["alpha", "beta"] {
                let dealer = try Socket(.dealer, context: context)
                try dealer.set(.routingID, bytes(name))
                try dealer.connect(endpoint)
                try dealer.send([bytes("from \(name)")])
                dealers.append(dealer)
            }
            var senders: [String: String] = [:]
            for _ in 0..<2 {
                let message = try #require(try receive(router))
                #expect(message.frames.count == 2)
                senders[String(decoding: message.frames[0], as: UTF8.self)] = String(decoding: message.frames[1], as: UTF8.self)
            }
            #expect(senders == ["alpha": "from alpha", "beta": "from beta"])

            try router.send([bytes("beta"), bytes("only for beta")])
            #expect(try receive(dealers[1])?.frames == [bytes("only for beta")])
            #expect(try receive(dealers[0], within: .milliseconds(200)) == nil)

            let unknown = #expect(throws: ZeroMQError.self) {
                try router.send([bytes("gamma"), bytes("nobody")])
            }
            #expect(unknown?.code == .hostUnreachable)
        }
    }

    @Test("multipart messages keep every frame, empty ones included", arguments: [
        [[UInt8]]([[1, 2, 3]]),
        [[], [0], []],
        (0..<50).map { [UInt8](repeating: UInt8($0), count: $0) },
    ])
    func multipart(frames: [[UInt8]]) async throws {
        try await onSocketThread {
            let context = try Context()
            let a = try Socket(.pair, context: context)
            let b = try Socket(.pair, context: context)
            try a.bind("inproc://multipart")
            try b.connect("inproc://multipart")
            try a.send(Message(frames))
            defer { withExtendedLifetime(a) {} }
            #expect(try receive(b)?.frames == frames)
        }
    }

    @Test("a 16 MiB frame arrives whole over TCP")
    func largeFrame() async throws {
        try await onSocketThread {
            let context = try Context()
            let (router, endpoint) = try boundRouter(context)
            let dealer = try Socket(.dealer, context: context)
            try dealer.connect(endpoint)
            var payload = [UInt8](repeating: 0, count: 16 << 20)
            for index in stride(from: 0, to: payload.count, by: 4093) { payload[index] = UInt8(truncatingIfNeeded: index) }
            try dealer.send([payload])
            defer { withExtendedLifetime(dealer) {} }
            let message = try #require(try receive(router))
            #expect(message.frames.count == 2)
            #expect(message.frames[1] == payload)
        }
    }

    @Test("a message above the receiver's maximum size is never delivered; smaller ones still are")
    func maxMessageSize() async throws {
        try await onSocketThread {
            let context = try Context()
            let router = try Socket(.router, context: context)
            try router.set(.maxMessageSize, 1024)
            #expect(try router.get(.maxMessageSize) == 1024)
            try router.bind("tcp://127.0.0.1:*")
            let endpoint = try #require(try router.lastEndpoint())

            let dealer = try Socket(.dealer, context: context)
            try dealer.set(.reconnectInterval, .milliseconds(20))
            let monitor = try dealer.monitor()
            try dealer.connect(endpoint)
            #expect(try waitForEvent(monitor) { $0 == .handshakeSucceeded } != nil)
            try dealer.send([[UInt8](repeating: 1, count: 4096)])
            // The receiver drops the connection on the oversized frame; the dealer reconnects.
            #expect(try waitForEvent(monitor) { $0 == .disconnected } != nil)
            #expect(try waitForEvent(monitor) { $0 == .handshakeSucceeded } != nil)
            try dealer.send([bytes("small")])
            let message = try #require(try receive(router))
            #expect(message.frames.last == bytes("small"))
            #expect(try receive(router, within: .milliseconds(100)) == nil)
        }
    }

    @Test("a full queue makes trySend report would-block instead of waiting")
    func wouldBlockAtHighWaterMark() async throws {
        try await onSocketThread {
            let context = try Context()
            // No peer at all: with `immediate` a DEALER has nowhere to queue.
            let lonely = try Socket(.dealer, context: context)
            try lonely.set(.immediate, true)
            try lonely.connect("tcp://127.0.0.1:1")
            #expect(try lonely.trySend([bytes("x")]) == false)
            // A blocking send waits for a peer, up to its timeout.
            try lonely.set(.sendTimeout, .milliseconds(50))
            let error = #expect(throws: ZeroMQError.self) { try lonely.send([bytes("late")]) }
            #expect(error?.code == .wouldBlock)

            // A peer that never reads: the queue fills up to the high-water marks.
            let (router, endpoint) = try boundRouter(context)
            try router.set(.receiveHighWaterMark, 5)
            let dealer = try Socket(.dealer, context: context)
            try dealer.set(.sendHighWaterMark, 5)
            try dealer.connect(endpoint)
            var accepted = 0
            let clock = ContinuousClock()
            let end = clock.now + .seconds(10)
            try withExtendedLifetime(router) {
                while try dealer.trySend([[UInt8](repeating: 0, count: 64 << 10)]), clock.now < end { accepted += 1 }
            }
            #expect(accepted >= 5)
            #expect(accepted < 10_000, "trySend never reported would-block")
        }
    }

    @Test("a socket used after close fails with socketClosed, and closing twice is harmless")
    func useAfterClose() async throws {
        try await onSocketThread {
            let context = try Context()
            let socket = try Socket(.dealer, context: context)
            socket.close(linger: .upTo(.milliseconds(10)))
            socket.close()
            #expect(socket.isClosed)
            let error = #expect(throws: ZeroMQError.self) { try socket.send([bytes("x")]) }
            #expect(error?.code == .socketClosed)
            #expect(throws: ZeroMQError.self) { try socket.connect("tcp://127.0.0.1:1") }
            #expect(throws: ZeroMQError.self) { try socket.get(.linger) }
        }
    }

    @Test("shutting the context down wakes a blocked receive with terminated")
    func contextShutdown() async throws {
        let context = try Context()
        let ready = Flag()
        let blocked = Task {
            try await onSocketThread { () -> ZeroMQError.Code? in
                do {
                    let socket = try Socket(.pull, context: context)
                    try socket.bind("inproc://nobody-sends")
                    ready.set()
                    _ = try socket.receive()
                    return nil
                } catch {
                    return (error as? ZeroMQError)?.code
                }
            }
        }
        // Either way round (blocked already, or about to block) the call must end in ETERM.
        try await ready.wait(upTo: .seconds(10))
        context.shutdown()
        #expect(try await blocked.value == .terminated)
    }
}
