import Courier
import Logging
import Metrics
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The application's side of receiving: takes every message the node delivers and
/// acknowledges it. On a graceful shutdown it stops taking messages (those not taken yet come
/// again after the next start); the group then shuts the node down.
struct ConsumerService: Service {
    let node: Node
    let logger: Logger
    /// An application metric beside Courier's own, in the same registry.
    private let acknowledged = Counter(label: "example_messages_acknowledged_total")

    init(node: Node, logger: Logger) {
        self.node = node
        self.logger = logger
    }

    func run() async {
        for await message in node.messages.cancelOnGracefulShutdown() {
            logger.debug("received", metadata: ["from": "\(message.sender)", "seq": "\(message.sequence)"])
            message.acknowledge()
            acknowledged.increment()
        }
    }
}

/// Sends `count` messages to `peer`, then waits for their outcomes and prints a summary. A
/// graceful shutdown cuts the wait short (the next run on the data directory learns the
/// outcomes). Done, it waits for the shutdown: a ServiceGroup takes a service that returns
/// while another one is shutting down for a failure.
struct SenderService: Service {
    let node: Node
    let peer: String
    let count: Int
    let logger: Logger

    func run() async throws {
        let node = node, peer = peer, count = count
        do {
            try await cancelWhenGracefulShutdown {
                var receipts: [Receipt] = []
                receipts.reserveCapacity(count)
                for number in 0..<count {
                    receipts.append(try await node.send(Array("\(node.id)-\(number + 1)".utf8), to: peer))
                }
                Output.line("sent: \(count) to \(peer)")
                var tally: [String: Int] = ["processed": 0, "rejected": 0, "expired": 0, "dead-lettered": 0]
                for outcome in try await receipts.outcomes() {
                    switch outcome {
                    case .processed: tally["processed", default: 0] += 1
                    case .rejected: tally["rejected", default: 0] += 1
                    case .expired: tally["expired", default: 0] += 1
                    case .deadLettered: tally["dead-lettered", default: 0] += 1
                    }
                }
                Output.line("outcomes: " + ["processed", "rejected", "expired", "dead-lettered"]
                    .map { "\($0)=\(tally[$0, default: 0])" }.joined(separator: " "))
            }
        } catch let error as CourierError where error.code == .cancelled || error.code == .shutDown {
            logger.notice("stopped before every outcome was known; the next run on this data directory learns them")
        }
        try await gracefulShutdown()
    }
}

/// Standard output, one line at a time, written at once (a script reads it through a pipe).
enum Output {
    static func line(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// One line on standard error, prefixed with the program's name.
    static func complain(_ text: String) {
        let bytes = Array("courier-prometheus-example: \(text)\n".utf8)
        bytes.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress!, $0.count) }
    }
}
