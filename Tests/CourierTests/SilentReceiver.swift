import Foundation
import Synchronization
import ZeroMQ
@testable import Courier

/// A receiver that records every DATA record's attempts and never acknowledges. It answers
/// HELLO with a WELCOME claiming everything it has seen when the HELLO came, except that
/// while `claim` is set it claims at most that much (as if the rest had been lost; unless
/// `claimForever`, the claim ends when the number after it is sent again), answers a HELLO after data
/// `welcomeDelay` late, and with `firstAnswerAfter` answers all HELLOs before data once,
/// that long after the first (as a receiver before this release did while it made a new
/// stream durable).
final class SilentReceiver: Sendable {
    struct State {
        var highest: UInt64 = 0
        var hellosAfterData = 0
        var attempts: [UInt64: [UInt32]] = [:]
        var claim: UInt64?
        var claimForever = false
        /// How long a WELCOME to a HELLO after data waits before it goes.
        var welcomeDelay: Duration = .zero
        /// When set, HELLOs before any data get one WELCOME, this long after the first.
        var firstAnswerAfter: Duration?
        var firstAnswerScheduled = false
    }
    let state = Mutex(State())
    private let stopped = Mutex(false)

    func stop() { stopped.withLock { $0 = true } }

    func run(_ endpoint: String) async throws {
        try await DedicatedThread.run(name: "silent-receiver") { [self] in
            let context = try Context()
            let router = try Socket(.router, context: context)
            try router.bind(endpoint)
            let poller = try Poller()
            poller.register(router)
            let decoder = WireDecoder(maxPayloadSize: 1 << 20)
            var replies: [(due: ContinuousClock.Instant, frames: [[UInt8]])] = []
            while !stopped.withLock({ $0 }) {
                _ = try poller.poll(timeout: .milliseconds(5))
                while let first = replies.first, first.due <= .now {
                    _ = try router.trySend(Message(first.frames))
                    replies.removeFirst()
                }
                while let message = try router.tryReceive() {
                    guard let frame = try? decoder.decode(message.frames[1]) else { continue }
                    switch frame {
                    case .hello(let hello):
                        let (received, delay, answer) = state.withLock { state in
                            if state.highest > 0 { state.hellosAfterData += 1 }
                            var answer = true
                            var delay = state.highest > 0 ? state.welcomeDelay : .zero
                            if state.highest == 0, let after = state.firstAnswerAfter {
                                answer = !state.firstAnswerScheduled
                                state.firstAnswerScheduled = true
                                delay = after
                            }
                            return (max(min(state.claim ?? .max, state.highest), hello.firstUnacknowledged - 1), delay, answer)
                        }
                        guard answer else { continue }
                        let welcome = WireFrame.welcome(.init(stream: hello.stream, processedUpTo: hello.firstUnacknowledged - 1,
                                                              receivedUpTo: received))
                        replies.append((.now + delay, [message.frames[0], WireEncoder.encode(welcome)]))
                    case .data(let batch):
                        state.withLock { state in
                            for record in batch.records {
                                state.attempts[record.sequence, default: []].append(record.attempt)
                                // The claim ends with the first resend of what it left out.
                                if let claim = state.claim, !state.claimForever, record.sequence == claim + 1, record.attempt > 1 {
                                    state.claim = nil
                                }
                                state.highest = max(state.highest, record.sequence)
                            }
                        }
                    default: break
                    }
                }
            }
        }
    }
}
