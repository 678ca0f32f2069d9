import Synchronization

/// A signal that fires once and that tasks can await: each waiter resumes when it fires, or
/// at once if it has fired, or when the waiting task is cancelled.
final class OneShotSignal: Sendable {
    private struct State {
        var fired = false
        var nextToken = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelledEarly: Set<Int> = []
    }

    private let state = Mutex(State())

    var hasFired: Bool { state.withLock { $0.fired } }

    /// Fires the signal (later calls change nothing).
    func fire() {
        let waiters = state.withLock { state in
            state.fired = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when the signal fires or the calling task is cancelled.
    func wait() async {
        let token = state.withLock { state in
            defer { state.nextToken += 1 }
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    if state.fired || state.cancelledEarly.remove(token) != nil { return true }
                    state.waiters[token] = waiter
                    return false
                }
                if now { waiter.resume() }
            }
            state.withLock { _ = $0.cancelledEarly.remove(token) }
        } onCancel: {
            let waiter = state.withLock { state in
                guard let waiter = state.waiters.removeValue(forKey: token) else {
                    state.cancelledEarly.insert(token)
                    return nil as CheckedContinuation<Void, Never>?
                }
                return waiter
            }
            waiter?.resume()
        }
    }
}
