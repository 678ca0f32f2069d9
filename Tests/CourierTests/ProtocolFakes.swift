import Foundation
import Synchronization
import ZeroMQ
@testable import Courier

/// A receiver that records every DATA record's attempts and never acknowledges. It answers
/// HELLO with a WELCOME claiming everything it has seen when the HELLO came, except that
/// while `claim` is set it claims at most that much (as if the rest had been lost; unless
/// `claimForever`, the claim ends when the number after it is sent again), answers a HELLO
/// after data `welcomeDelay` late, and with `firstAnswerAfter` answers all HELLOs before
/// data once, that long after the first (as a receiver before this release did while it
/// made a new stream durable).
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
    let state: Mutex<State>
    private let stopped = Mutex(false)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    /// Binds `endpoint` and starts answering on a thread of its own, with `configure`
    /// applied to the state first.
    init(at endpoint: String, _ configure: (inout State) -> Void = { _ in }) {
        var initial = State()
        configure(&initial)
        state = Mutex(initial)
        let running = Task { [self] in try await run(endpoint) }
        task.withLock { $0 = running }
    }

    /// Asks the thread to stop (safe to call more than once, as from a `defer`).
    func stop() { stopped.withLock { $0 = true } }

    /// Stops the thread and waits for it, rethrowing what it failed with.
    func finish() async throws {
        stop()
        try await task.withLock { $0 }?.value
    }

    /// Waits until `condition` holds of the state, failing after 20 s.
    func waitUntil(_ what: String, _ condition: @escaping @Sendable (State) -> Bool) async throws {
        try await within(.seconds(20), what) { [self] in
            while !state.withLock({ condition($0) }) { try await Task.sleep(for: .milliseconds(5)) }
        }
    }

    private func run(_ endpoint: String) async throws {
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

/// A DEALER that speaks the wire protocol by hand as sender `id`, for tests that need frames
/// a node would never send. Like any socket it stays on the thread that made it (inside
/// `DedicatedThread.run`).
struct RawSender {
    private let dealer: Socket
    private let poller: Poller
    private let decoder = WireDecoder(maxPayloadSize: 1 << 20)

    init(id: String, connectingTo endpoint: String) throws {
        let context = try Context()
        dealer = try Socket(.dealer, context: context)
        try dealer.set(.routingID, Array(id.utf8))
        try dealer.connect(endpoint)
        poller = try Poller()
        poller.register(dealer)
    }

    func send(_ frame: [UInt8]) throws { try dealer.send(Message([frame])) }

    /// Hands each frame that arrives to `handle` until it returns true (then returns true)
    /// or `limit` has passed (then returns false).
    func receive(for limit: Duration, _ handle: (WireFrame) throws -> Bool) throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            _ = try poller.poll(timeout: .milliseconds(20))
            while let message = try dealer.tryReceive() {
                if try handle(decoder.decode(message.frames[0])) { return true }
            }
        }
        return false
    }

    func close() { dealer.close(linger: .discard) }
}
