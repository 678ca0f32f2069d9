import Synchronization

/// Hands elements from the node's threads to one consuming task: the node's deliveries and
/// its events. What `AsyncStream` does, as a type of this module, so that the compiler
/// specialises it for its element (a yield through `AsyncStream` looks its generic
/// metadata up at run time, a cost the profile showed on every delivery and every
/// dead-letter event).
///
/// One consumer at a time. Cancelling the task waiting in ``next()`` ends the channel, as
/// cancelling an `AsyncStream`'s consumer does: `next()` returns nil from then on and
/// elements sent later are dropped.
final class HandOffChannel<Element: Sendable>: Sendable {
    private struct State: ~Copyable {
        var buffer: [Element] = []
        var head = 0
        var waiter: CheckedContinuation<Element?, Never>?
        var finished = false

        var isEmpty: Bool { head == buffer.count }

        mutating func removeFirst() -> Element? {
            guard head < buffer.count else { return nil }
            let element = buffer[head]
            head += 1
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: buffer.capacity <= 4_096)
                head = 0
            } else if head >= 1_024, head * 2 >= buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return element
        }

        /// Ends the channel (dropping what is kept, for a cancelled consumer) and takes the
        /// waiting consumer, to be resumed with nil.
        mutating func end(dropping: Bool) -> CheckedContinuation<Element?, Never>? {
            finished = true
            if dropping {
                buffer.removeAll()
                head = 0
            }
            defer { waiter = nil }
            return waiter
        }
    }

    private let state = Mutex(State())
    /// At most this many elements wait; beyond it the oldest are dropped (nil: no bound).
    private let limit: Int?

    init(keepingNewest limit: Int? = nil) {
        precondition(limit.map { $0 > 0 } ?? true, "a bounded channel keeps at least one element")
        self.limit = limit
    }

    /// Hands `element` to the consumer, or keeps it until asked for (dropped once the
    /// channel has ended).
    func send(_ element: Element) {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, Never>? in
            guard !state.finished else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.buffer.append(element)
            if let limit, state.buffer.count - state.head > limit { _ = state.removeFirst() }
            return nil
        }
        waiter?.resume(returning: element)
    }

    /// Ends the channel: the consumer gets what is kept, then nil.
    func finish() {
        state.withLock { $0.end(dropping: false) }?.resume(returning: nil)
    }

    /// The next element, waiting for one; nil once the channel has ended and nothing is
    /// kept, or when the waiting task is cancelled.
    func next() async -> Element? {
        if let ready = state.withLock({ state -> Element?? in
            if let element = state.removeFirst() { return .some(element) }
            // A consumer cancelled before it asked ends the channel too (no one waits yet).
            if Task.isCancelled { _ = state.end(dropping: true) }
            return state.finished ? .some(nil) : nil
        }) {
            return ready
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
                let immediate = state.withLock { state -> Element?? in
                    if let element = state.removeFirst() { return .some(element) }
                    if state.finished { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            state.withLock { $0.end(dropping: true) }?.resume(returning: nil)
        }
    }

    /// The next element if one is kept, without waiting.
    func poll() -> Element? {
        state.withLock { $0.removeFirst() }
    }
}
