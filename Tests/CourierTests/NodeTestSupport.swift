import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
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

/// A tcp://127.0.0.1 endpoint nobody listens on (see `freeLoopbackPort()`).
func freeLoopbackEndpoint() -> String {
    "tcp://127.0.0.1:\(freeLoopbackPort())"
}

/// Starts node "s" in `directory`/s, with one peer: "r" at `endpoint`.
func startSender(in directory: TemporaryDirectory, to endpoint: String) async throws -> Node {
    try await Node.start(configuration(id: "s", directory: directory.sub("s"),
                                       peers: [PeerConfiguration(id: "r", endpoints: [endpoint])]))
}

/// Starts node "r" in `directory`/r, listening on `endpoint`.
func startReceiver(in directory: TemporaryDirectory, listening endpoint: String) async throws -> Node {
    try await Node.start(configuration(id: "r", directory: directory.sub("r"), listen: [endpoint]))
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
