import Synchronization

/// Which messages the application has really taken from ``IncomingMessages``, per stream,
/// and whether the node is stopping (after which it takes no more).
///
/// A message yielded to the stream but never taken was not handed to the application. At a
/// graceful shutdown the node lowers each stream's durable reservation to what was taken,
/// so those messages come back after a restart unflagged, as messages never seen before.
final class DeliveryTracker: Sendable {
    struct Key: Hashable, Sendable {
        var sender: String
        var stream: UInt64
    }

    private struct State {
        var stopping = false
        var taken: [Key: UInt64] = [:]
    }

    private let state = Mutex(State())

    /// Records that the application takes `message`; false once the node is stopping (the
    /// message is then not handed out at all).
    func take(_ message: IncomingMessage) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            let key = Key(sender: message.sender, stream: message.stream)
            state.taken[key] = max(state.taken[key] ?? 0, message.sequence)
            return true
        }
    }

    /// Stops handing out; later `take` calls fail.
    func stop() {
        state.withLock { $0.stopping = true }
    }

    /// The highest number taken per stream (streams are handed out in order, so everything
    /// below it in that stream was taken too).
    var taken: [Key: UInt64] { state.withLock { $0.taken } }
}
