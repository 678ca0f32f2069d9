import Synchronization

/// Messages a ``Publisher`` accepted and submitted to the spool as one append: its
/// ``PendingReceipt``s wait here until the append is durable (or failed).
final class PendingBatch: Sendable {
    typealias Stored = Result<(stream: UInt64, first: UInt64), CourierError>

    /// The batch's place in its publisher's order (1, 2, …), for ``Publisher/flush()``.
    let number: UInt64
    private let state = Mutex<(result: Stored?, waiters: [UInt64: CheckedContinuation<Stored, Never>], nextWaiter: UInt64)>((nil, [:], 0))

    init(number: UInt64) { self.number = number }

    /// Waits until the batch is stored or failed; a cancelled wait throws
    /// ``CourierError/Code/cancelled`` (the messages are unaffected).
    func stored() async throws(CourierError) -> (stream: UInt64, first: UInt64) {
        if let known = state.withLock({ $0.result }) { return try known.get() }
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Stored, Never>) in
                let known: Stored? = state.withLock { state in
                    if let result = state.result { return result }
                    if Task.isCancelled { return .failure(Self.cancelled) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let known { continuation.resume(returning: known) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: .failure(Self.cancelled))
        }
        return try result.get()
    }

    /// The append finished: every waiter, present and future, gets `result`.
    func settle(_ result: Stored) {
        let waiters = state.withLock { state -> [CheckedContinuation<Stored, Never>] in
            if state.result != nil { return [] }
            state.result = result
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }

    private static let cancelled = CourierError(.cancelled, "the task waiting for the message to be stored was cancelled; the message itself is unaffected")
}
