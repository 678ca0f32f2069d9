import Foundation
import Synchronization
import ZeroMQ
@testable import Courier

/// A ROUTER that plays a receiver by hand, on a thread of its own, for tests that need a
/// peer no node would be: it binds `endpoint`, decodes each frame that arrives and hands it,
/// with the fake's `state` (under its lock), to `respond`; the replies `respond` returns go
/// back to the frame's sender in order, each once its delay has passed (a delayed reply holds
/// back those after it).
final class FakeRouter<State>: Sendable {
    struct Reply {
        var bytes: [UInt8]
        var after: Duration = .zero

        init(_ frame: WireFrame, after: Duration = .zero) {
            self.init(bytes: WireEncoder.encode(frame), after: after)
        }

        init(bytes: [UInt8], after: Duration = .zero) {
            self.bytes = bytes
            self.after = after
        }
    }

    let state: Mutex<State>
    private let stopped = Mutex(false)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    init(at endpoint: String, name: String, state initial: sending State,
         respond: @escaping @Sendable (WireFrame, inout State) -> [Reply]) {
        state = Mutex(initial)
        let running = Task { [self] in try await run(endpoint, name: name, respond: respond) }
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
    func waitUntil(_ what: String, _ condition: @escaping @Sendable (borrowing State) -> Bool) async throws {
        try await within(.seconds(20), what) { [self] in
            while !state.withLock({ condition($0) }) { try await Task.sleep(for: .milliseconds(5)) }
        }
    }

    private func run(_ endpoint: String, name: String, respond: @escaping @Sendable (WireFrame, inout State) -> [Reply]) async throws {
        try await DedicatedThread.run(name: name) { [self] in
            let context = try Context()
            let router = try Socket(.router, context: context)
            try router.bind(endpoint)
            let poller = try Poller()
            poller.register(router)
            let decoder = WireDecoder(maxPayloadSize: 1 << 20)
            var outbox: [(due: ContinuousClock.Instant, message: Message)] = []
            while !stopped.withLock({ $0 }) {
                _ = try poller.poll(timeout: .milliseconds(5))
                while let first = outbox.first, first.due <= .now {
                    _ = try router.trySend(first.message)
                    outbox.removeFirst()
                }
                while let message = try router.tryReceive() {
                    guard message.frames.count == 2, let frame = try? decoder.decode(message.frames[1]) else { continue }
                    let replies = state.withLock { respond(frame, &$0) }
                    for reply in replies {
                        outbox.append((.now + reply.after, Message([message.frames[0], reply.bytes])))
                    }
                }
            }
            router.close()
        }
    }
}

/// A receiver that records every DATA record's attempts and never acknowledges. It answers
/// HELLO with a WELCOME claiming everything it has seen when the HELLO came, except that
/// while `claim` is set it claims at most that much (as if the rest had been lost; unless
/// `claimForever`, the claim ends when the number after it is sent again), answers a HELLO
/// after data `welcomeDelay` late, and with `firstAnswerAfter` answers all HELLOs before
/// data once, that long after the first (as a receiver before this release did while it
/// made a new stream durable).
typealias SilentReceiver = FakeRouter<SilentReceiverState>

struct SilentReceiverState {
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

extension FakeRouter where State == SilentReceiverState {
    /// Binds `endpoint` and starts answering, with `configure` applied to the state first.
    convenience init(at endpoint: String, _ configure: (inout State) -> Void = { _ in }) {
        var initial = State()
        configure(&initial)
        self.init(at: endpoint, name: "silent-receiver", state: initial) { frame, state in
            switch frame {
            case .hello(let hello):
                if state.highest > 0 { state.hellosAfterData += 1 }
                var delay = state.highest > 0 ? state.welcomeDelay : .zero
                if state.highest == 0, let after = state.firstAnswerAfter {
                    guard !state.firstAnswerScheduled else { return [] }
                    state.firstAnswerScheduled = true
                    delay = after
                }
                let received = max(min(state.claim ?? .max, state.highest), hello.firstUnacknowledged - 1)
                return [Reply(.welcome(.init(stream: hello.stream, processedUpTo: hello.firstUnacknowledged - 1, receivedUpTo: received)),
                              after: delay)]
            case .data(let batch):
                for record in batch.records {
                    state.attempts[record.sequence, default: []].append(record.attempt)
                    // The claim ends with the first resend of what it left out.
                    if let claim = state.claim, !state.claimForever, record.sequence == claim + 1, record.attempt > 1 {
                        state.claim = nil
                    }
                    state.highest = max(state.highest, record.sequence)
                }
                return []
            default:
                return []
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
