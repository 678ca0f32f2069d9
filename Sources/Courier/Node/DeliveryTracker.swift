import CourierSpool
import Synchronization

/// Messages handed from the I/O thread to the application's iterator in one go: everything
/// one turn of the loop could hand out, grouped by stream, in order within each stream.
struct DeliveryBatch: Sendable {
    /// One stream's messages in the batch: they end before `end` (an index in `messages`).
    struct Run: Sendable {
        var key: DeliveryTracker.Key
        var end: Int
        /// Where the stream's taken mark is recorded (nil: nowhere; its reservation counts).
        var taken: TakenSlot?
    }

    var messages: [IncomingMessage] = []
    var runs: [Run] = []

    var isEmpty: Bool { messages.isEmpty }

    /// Ends the run of `key`'s messages appended to ``messages`` since the last run ended
    /// (none: no run).
    mutating func endRun(key: DeliveryTracker.Key, taken: TakenSlot?) {
        guard messages.count > (runs.last?.end ?? 0) else { return }
        runs.append(Run(key: key, end: messages.count, taken: taken))
    }
}

/// Which messages the application has really taken from ``IncomingMessages``, per stream,
/// and whether the node is stopping (after which it takes no more).
///
/// The I/O thread yields whole ``DeliveryBatch``es; the application's iterator takes their
/// messages one at a time through ``next()``. The batch being taken lives here, not in the
/// iterator, so that an iterator dropped half-way (a `break` out of a `for await` loop)
/// leaves the rest for the next one. A message in a batch but never taken was not handed
/// to the application: at a graceful shutdown the node lowers each stream's durable
/// reservation to what was taken, so those messages come back after a restart unflagged,
/// as messages never seen before.
final class DeliveryTracker: Sendable {
    struct Key: Hashable, Sendable {
        var sender: String
        var stream: UInt64
    }

    /// What ``next()`` found.
    enum Step {
        case message(IncomingMessage)
        /// The current batch is used up: fetch the next one and ``accept(_:)`` it.
        case empty
        /// The node is stopping: hand out nothing more.
        case stopped
    }

    private struct State {
        var stopping = false
        var taken: [Key: UInt64] = [:]
        var batch = DeliveryBatch()
        var cursor = 0
        /// The run of `batch` that holds `cursor`.
        var run = 0

        /// Folds the first `count` messages of the current batch into `taken`.
        mutating func recordTaken(upTo count: Int) {
            var start = 0
            for run in batch.runs where start < count {
                let last = batch.messages[min(run.end, count) - 1].sequence
                taken[run.key] = max(taken[run.key] ?? 0, last)
                start = run.end
            }
        }
    }

    private let state = Mutex(State())

    /// The next message of the current batch, recorded as taken by the application: in
    /// memory, and in its stream's taken mark (a store into a mapped file, which outlives a
    /// crash of the process) before it is returned.
    func next() -> Step {
        state.withLock { state in
            guard !state.stopping else { return .stopped }
            guard state.cursor < state.batch.messages.count else { return .empty }
            defer { state.cursor += 1 }
            let message = state.batch.messages[state.cursor]
            while state.run < state.batch.runs.count, state.batch.runs[state.run].end <= state.cursor { state.run += 1 }
            if state.run < state.batch.runs.count { state.batch.runs[state.run].taken?.record(message.sequence) }
            return .message(message)
        }
    }

    /// Makes `batch` the current one (the previous one was used up); false once the node is
    /// stopping.
    func accept(_ batch: DeliveryBatch) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.recordTaken(upTo: state.cursor)
            state.batch = batch
            state.cursor = 0
            state.run = 0
            return true
        }
    }

    /// Stops handing out; later ``next()`` calls say so.
    func stop() {
        state.withLock { state in
            guard !state.stopping else { return }
            state.stopping = true
            state.recordTaken(upTo: state.cursor)
            state.batch = DeliveryBatch()
            state.cursor = 0
            state.run = 0
        }
    }

    /// The highest number taken per stream (streams are handed out in order, so everything
    /// below it in that stream was taken too). Complete once ``stop()`` was called.
    var taken: [Key: UInt64] { state.withLock { $0.taken } }
}
