import Testing
@testable import ZeroMQ

@Suite("Poller and waker", .timeLimit(.minutes(1)))
struct PollerTests {
    @Test("poll returns after its timeout when nothing happens")
    func timeout() async throws {
        try await onSocketThread {
            let context = try Context()
            let socket = try Socket(.pull, context: context)
            try socket.bind("inproc://quiet")
            let poller = try Poller()
            poller.register(socket)
            let clock = ContinuousClock()
            let started = clock.now
            let result = try poller.poll(timeout: .milliseconds(100))
            #expect(result.timedOut)
            #expect(clock.now - started >= .milliseconds(90))
            #expect(try poller.poll(timeout: .zero).timedOut)
        }
    }

    @Test("another thread's wake-up ends a long poll, and wake-ups coalesce")
    func wakeUp() async throws {
        let poller = try await onSocketThread { () -> PollerBox in PollerBox(try Poller()) }
        let waker = poller.value.waker
        let polling = Task {
            try await onSocketThread { () -> Bool in
                try poller.value.poll(timeout: .seconds(30)).woken
            }
        }
        waker.wake()
        waker.wake()
        #expect(try await polling.value)
        let again = try await onSocketThread { try poller.value.poll(timeout: .zero).timedOut }
        #expect(again, "two wake-ups before a poll should wake it once")
    }

    @Test("poll reports which socket is readable")
    func readiness() async throws {
        try await onSocketThread {
            let context = try Context()
            let a = try Socket(.pull, context: context)
            let b = try Socket(.pull, context: context)
            try a.bind("inproc://a")
            try b.bind("inproc://b")
            let pushB = try Socket(.push, context: context)
            try pushB.connect("inproc://b")
            let poller = try Poller()
            poller.register(a)
            poller.register(b)
            try pushB.send([bytes("hi")])
            let result = try poller.poll(timeout: .seconds(10))
            #expect(result.isReadable(b))
            #expect(!result.isReadable(a))
            #expect(!result.woken)
            poller.unregister(b)
            #expect(try poller.poll(timeout: .zero).timedOut)
        }
    }

    @Test("polling a closed socket is an error, not undefined behaviour")
    func closedSocket() async throws {
        try await onSocketThread {
            let context = try Context()
            let socket = try Socket(.pull, context: context)
            let poller = try Poller()
            poller.register(socket)
            socket.close()
            let error = #expect(throws: ZeroMQError.self) { try poller.poll(timeout: .zero) }
            #expect(error?.code == .socketClosed)
        }
    }
}

/// Moves a poller between test threads one at a time; only its waker is used concurrently.
final class PollerBox: @unchecked Sendable {
    let value: Poller
    init(_ value: Poller) { self.value = value }
}
