import Foundation
import Logging
import Synchronization
import Testing
@testable import Courier

/// A fresh data directory under /tmp, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String
    init(_ name: String = "node") {
        path = NSTemporaryDirectory() + "courier-test-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
}

/// Ports handed out in this process so far: never the same one twice.
private let handedOutPorts = Mutex<Set<Int>>([])

/// A port nobody listens on right now, for tcp://127.0.0.1. Taken below the kernel's
/// ephemeral range (32768 and up): a port from `bind(0)` comes from that range, and while a
/// test holds it unbound (a peer that starts later), any outgoing connection (nodes retry
/// theirs all the time) may take it as its source port, and the later bind fails.
func freeLoopbackEndpoint() -> String {
    while true {
        let port = Int.random(in: 20_000..<32_000)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }), canBindLoopback(port) else { continue }
        return "tcp://127.0.0.1:\(port)"
    }
}

private func canBindLoopback(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

func configuration(id: String, directory: String, listen: [String] = [], peers: [PeerConfiguration] = []) -> NodeConfiguration {
    var configuration = NodeConfiguration(id: id, dataDirectory: directory)
    configuration.listen = listen
    configuration.peers = peers
    configuration.retransmission.initialTimeout = .milliseconds(200)
    configuration.retransmission.maximumTimeout = .seconds(1)
    // COURIER_TEST_LOG=debug shows the nodes' logs when a test needs explaining.
    configuration.logger.logLevel = ProcessInfo.processInfo.environment["COURIER_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return configuration
}

/// Runs `body` against a deadline; throws ``DeadlineExceeded`` if it does not finish in
/// time, even when `body` ignores cancellation (it is cancelled and left behind).
func within<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let waiter = Once<Result<T, any Error>>()
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>, Never>) in
        waiter.set(continuation)
        let work = Task {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            waiter.take()?.resume(returning: outcome)
        }
        Task {
            try? await Task.sleep(for: limit)
            guard let late = waiter.take() else { return }
            work.cancel()
            late.resume(returning: .failure(DeadlineExceeded(what: what, limit: limit)))
        }
    }
    return try result.get()
}

/// A continuation that is resumed by whoever takes it first.
final class Once<T: Sendable>: Sendable {
    private let slot = Mutex<CheckedContinuation<T, Never>?>(nil)
    func set(_ continuation: CheckedContinuation<T, Never>) { slot.withLock { $0 = continuation } }
    func take() -> CheckedContinuation<T, Never>? { slot.withLock { $0.take() } }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var what: String
    var limit: Duration
    var description: String { "\(what) did not happen within \(limit)" }
}

/// Collects `count` messages from `node`, acknowledging each (or handling it with `handle`).
func receive(_ count: Int, from node: Node, handle: @escaping @Sendable (IncomingMessage) -> Void = { $0.acknowledge() }) async -> [IncomingMessage] {
    var received: [IncomingMessage] = []
    for await message in node.messages {
        handle(message)
        received.append(message)
        if received.count == count { break }
    }
    return received
}

/// A value shared between a test and the tasks it starts.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}
