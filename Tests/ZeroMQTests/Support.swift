import Synchronization
import Testing
@testable import ZeroMQ

/// Runs blocking socket code on a thread of its own, as the library does, never on the
/// cooperative pool. Sockets made inside belong to that thread.
func onSocketThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await DedicatedThread.run(name: "zmq-test", body)
}

/// The next message on `socket`, or nil when none arrives within `deadline`.
func receive(_ socket: Socket, within deadline: Duration = .seconds(10)) throws -> Message? {
    let poller = try Poller()
    poller.register(socket)
    let clock = ContinuousClock()
    let end = clock.now + deadline
    while clock.now < end {
        if let message = try socket.tryReceive() { return message }
        _ = try poller.poll(timeout: end - clock.now)
    }
    return try socket.tryReceive()
}

/// Waits for a monitor event matching `predicate`; returns every event seen up to it, or
/// nil when the deadline passes first.
func waitForEvent(
    _ monitor: Monitor, within deadline: Duration = .seconds(10),
    where predicate: (MonitorEvent.Kind) -> Bool
) throws -> [MonitorEvent]? {
    var seen: [MonitorEvent] = []
    while let message = try receive(monitor.socket, within: deadline) {
        guard let event = MonitorEvent(frames: message.frames) else { continue }
        seen.append(event)
        if predicate(event.kind) { return seen }
    }
    return nil
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// A ROUTER bound to a free loopback port, and its endpoint.
func boundRouter(_ context: Context) throws -> (Socket, String) {
    let router = try Socket(.router, context: context)
    try router.bind("tcp://127.0.0.1:*")
    return (router, try router.lastEndpoint()!)
}

/// A one-shot signal between a socket thread and a test, waited for with a deadline.
final class Flag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
    func wait(upTo deadline: Duration) async throws {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        while !isSet {
            guard clock.now < end else { throw FlagTimeout() }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
    struct FlagTimeout: Error {}
}
