import CoreMetrics
import CourierSystem
import SystemPackage
import Logging
import Synchronization

/// The durable, append-only log of messages to one peer: one stream, sequence numbers
/// 1, 2, 3, … with no gaps, kept until acknowledged.
///
/// Get one from ``DataDirectory/outboundLog(for:)``. Every method may be called from any
/// thread. Three ways to append:
/// - with a completion callback (``append(_:completion:)``): never blocks; the completion
///   runs on the log's own thread once the record is durable under the policy. This is the
///   form for the node's I/O thread.
/// - blocking (``appendAndWait(_:)``): for threads that may block; never from a task.
/// - `async` (``append(_:)``): for applications.
///
/// Blocking file work (writes, `fdatasync`, segment deletion) runs on a thread the log
/// owns, never on the Swift cooperative pool. ``readPending(from:limit:maxBytes:)`` reads
/// the file on the caller's thread (a `pread` of only the records asked for), so call it
/// from the node's I/O thread, not from a task.
package final class OutboundLog: Sendable {
    /// The peer this log sends to.
    package let peer: String
    /// The stream id: random, nonzero, created with the log and kept for its lifetime.
    package let streamID: UInt64
    /// The log's directory.
    package let directory: FilePath
    /// The records this peer's node gave up on.
    package let deadLetters: DeadLetterStore

    let configuration: SpoolConfiguration
    let metrics: SpoolMetrics
    let state: Mutex<OutboundLogState>
    let signal: WakeEvent
    let writer: LogWriter
    private let thread: Mutex<OSThread?> = Mutex(nil)
    let reportedBadReads: Mutex<Set<UInt64>> = Mutex([])
    private let nextRequestID = Atomic<UInt64>(0)

    init(peer: String, directory: FilePath, configuration: SpoolConfiguration) throws(SpoolError) {
        self.peer = peer
        self.directory = directory
        self.configuration = configuration
        self.metrics = SpoolMetrics(peer: peer)
        do { signal = try WakeEvent() } catch { throw .wakeEvent(error, doing: "opening the outbound log for \(peer)") }
        let recovery = LogRecovery(directory: directory, peer: peer, configuration: configuration, metrics: metrics)
        let recovered = try recovery.recover()
        self.streamID = recovered.metaFile.current.streamID
        var initial = OutboundLogState(
            segments: recovered.segments,
            nextSequence: recovered.nextSequence,
            acknowledgedUpTo: recovered.metaFile.current.acknowledgedUpTo,
            persistedAcknowledgedUpTo: recovered.metaFile.current.acknowledgedUpTo
        )
        let held = initial.held(after: initial.acknowledgedUpTo, upTo: initial.nextSequence - 1)
        initial.pendingCount = held.count
        initial.pendingBytes = held.bytes
        initial.oldestNeedsRefresh = held.count > 0
        initial.attempts = AttemptFile.load(directory: directory, streamID: streamID, logger: configuration.logger, peer: peer)
        self.state = Mutex(initial)
        var spares = SparePool(
            directory: directory, capacity: configuration.spareSegments,
            lifetime: configuration.testHooks.spareLifetime.map { $0.nanoseconds } ?? SparePool.defaultLifetime
        )
        try spares.load(streamID: recovered.metaFile.current.streamID, now: monotonicNanoseconds(), logger: configuration.logger)
        self.writer = LogWriter(metaFile: recovered.metaFile, spares: spares,
                                attemptFile: AttemptFile(directory: directory, streamID: recovered.metaFile.current.streamID))
        self.deadLetters = try DeadLetterStore(peer: peer, directory: directory, configuration: configuration, metrics: metrics)
        for event in recovered.events { configuration.onEvent?(event) }
        metrics.pendingMessages.record(held.count)
        metrics.pendingBytes.record(held.bytes)
        configuration.logger.info("spool: opened outbound log", metadata: [
            "peer": "\(peer)", "stream": "\(hex(streamID))", "next": "\(initial.nextSequence)",
            "acknowledgedUpTo": "\(initial.acknowledgedUpTo)", "pending": "\(held.count)",
        ])
        let started: OSThread
        do { started = try OSThread.start(name: "spool-writer") { [self] in self.runWriter() } } catch {
            throw .threadStart(error, doing: "opening the outbound log for \(peer)")
        }
        thread.withLock { $0 = started }
        deadLetters.attach(to: self)
        refreshOldestIfNeeded()
    }

    // MARK: Appending

    /// Appends one record; `completion` runs on the log's thread with its sequence number
    /// once it is durable under the configured policy, or with the error.
    ///
    /// Completions run in append order on the log's own thread: keep them short, and never
    /// wait in one for the log (``appendAndWait(_:)``, the blocking `DeadLetterStore.requeue(_:)`),
    /// which would wait for itself. Hand the result to your own thread instead.
    package func append(_ entry: SpoolEntry, completion: @escaping @Sendable (Result<UInt64, SpoolError>) -> Void) {
        append(contentsOf: [entry]) { result in completion(result.map(\.lowerBound)) }
    }

    /// Appends records in order, as one unit: they get consecutive sequence numbers and
    /// are made durable together. `completion` gets the range of sequence numbers.
    package func append(contentsOf entries: [SpoolEntry], completion: @escaping @Sendable (Result<ClosedRange<UInt64>, SpoolError>) -> Void) {
        enqueue(entries, id: 0, completion: completion)
    }

    /// Queues an append; `id` (nonzero) lets ``cancelQueued(_:)`` find it.
    private func enqueue(_ entries: [SpoolEntry], id: UInt64, completion: @escaping @Sendable (Result<ClosedRange<UInt64>, SpoolError>) -> Void) {
        guard !entries.isEmpty else {
            completion(.failure(SpoolError(code: .invalidArgument, message: "an append needs at least one record")))
            return
        }
        var bytes: Int64 = 0
        for entry in entries {
            if entry.encodedSize > configuration.maxRecordSize {
                completion(.failure(SpoolError(code: .recordTooLarge, message: "a record of \(entry.encodedSize) bytes exceeds maxRecordSize (\(configuration.maxRecordSize)); send smaller messages or raise the limit")))
                return
            }
            bytes += Int64(entry.encodedSize)
        }
        let request = AppendRequest(id: id, entries: entries, bytes: bytes, completion: completion)
        let outcome = state.withLock { state -> (accepted: Bool, wake: Bool) in
            if state.closed { return (false, false) }
            state.queue.append(request)
            return (true, state.wake())
        }
        if !outcome.accepted {
            completion(.failure(.closedError))
        } else if outcome.wake {
            signal.wake()
        }
    }

    /// Appends one record and returns its sequence number once durable.
    ///
    /// When the spool is full and ``SpoolConfiguration/whenFull`` is ``SpoolFullBehavior/wait``,
    /// this suspends until space is freed. Cancelling the task while the append is still
    /// queued withdraws it (it throws ``SpoolError/Code/cancelled`` and gets no sequence
    /// number); once the writer has taken it, it completes normally.
    package func append(_ entry: SpoolEntry) async throws(SpoolError) -> UInt64 {
        try await append(contentsOf: [entry]).lowerBound
    }

    /// Appends a payload with default options and returns its sequence number once durable.
    package func append(_ payload: [UInt8]) async throws(SpoolError) -> UInt64 {
        try await append(SpoolEntry(payload: payload))
    }

    /// Appends records as one unit and returns their sequence numbers once durable.
    /// Cancellation works as for ``append(_:)-(SpoolEntry)``.
    package func append(contentsOf entries: [SpoolEntry]) async throws(SpoolError) -> ClosedRange<UInt64> {
        let id = nextRequestID.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<ClosedRange<UInt64>, SpoolError>, Never>) in
                enqueue(entries, id: id) { continuation.resume(returning: $0) }
            }
        } onCancel: {
            cancelQueued(id)
        }.get()
    }

    /// Withdraws the queued append `id`, if the writer has not taken it yet.
    private func cancelQueued(_ id: UInt64) {
        let withdrawn = state.withLock { state -> AppendRequest? in
            guard let index = state.queue.firstIndex(where: { $0.id == id }) else { return nil }
            return state.queue.remove(at: index)
        }
        withdrawn?.completion(.failure(SpoolError(code: .cancelled, message: "the append was cancelled while it waited in the queue; it was not written")))
    }

    /// Appends one record, blocking the calling thread until it is durable. Never call
    /// this from a Swift task; use ``append(_:)`` there.
    package func appendAndWait(_ entry: SpoolEntry) throws(SpoolError) -> UInt64 {
        let box = try BlockingResult<UInt64>()
        append(entry) { box.set($0) }
        return try box.wait()
    }

    /// Appends records as one unit, blocking the calling thread until durable.
    package func appendAndWait(contentsOf entries: [SpoolEntry]) throws(SpoolError) -> ClosedRange<UInt64> {
        let box = try BlockingResult<ClosedRange<UInt64>>()
        append(contentsOf: entries) { box.set($0) }
        return try box.wait()
    }

    // MARK: Acknowledging

    /// Marks every record up to and including `sequenceNumber` acknowledged (cumulative).
    ///
    /// Takes effect in memory at once (pending counts, space for waiting appends, reads);
    /// the mark is written to disk by the log's thread shortly after (coalesced), and whole
    /// segments below it are deleted then. A lost mark after a crash only means records are
    /// sent again, which the receiver's deduplication absorbs. A mark at or below the current
    /// one is ignored. Returns how many records this freed.
    @discardableResult
    package func acknowledge(upTo sequenceNumber: UInt64) throws(SpoolError) -> Int {
        let result = state.withLock { state -> Result<(freed: Int, wake: Bool, count: Int, bytes: Int64), SpoolError> in
            if state.closed { return .failure(.closedError) }
            if sequenceNumber >= state.nextSequence {
                return .failure(SpoolError(code: .invalidArgument, message: "cannot acknowledge \(sequenceNumber): the highest durable sequence number is \(state.nextSequence - 1)"))
            }
            if sequenceNumber <= state.acknowledgedUpTo { return .success((0, false, state.pendingCount, state.pendingBytes)) }
            let held = state.held(after: state.acknowledgedUpTo, upTo: sequenceNumber)
            state.acknowledgedUpTo = sequenceNumber
            state.pendingCount -= held.count
            state.pendingBytes -= held.bytes
            if state.pendingCount == 0 {
                state.oldestPendingEnqueuedAt = nil
                state.oldestNeedsRefresh = false
            } else {
                state.oldestNeedsRefresh = true
            }
            return .success((held.count, state.wake(), state.pendingCount, state.pendingBytes))
        }
        let value = try result.get()
        if value.wake { signal.wake() }
        if value.freed > 0 {
            metrics.pendingMessages.record(value.count)
            metrics.pendingBytes.record(value.bytes)
        }
        return value.freed
    }

    // MARK: Flushing and status

    /// Makes everything appended so far durable (an `fdatasync`, whatever the policy) and
    /// writes the acknowledged mark; `completion` runs on the log's thread.
    package func flush(completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        let outcome = state.withLock { state -> (accepted: Bool, wake: Bool) in
            if state.closed { return (false, false) }
            state.flushWaiters.append(completion)
            return (true, state.wake())
        }
        if !outcome.accepted { completion(.failure(.closedError)) } else if outcome.wake { signal.wake() }
    }

    /// Makes everything appended so far durable and writes the acknowledged mark.
    package func flush() async throws(SpoolError) {
        try await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, SpoolError>, Never>) in
            flush { continuation.resume(returning: $0) }
        }.get()
    }

    /// The log's counters. Cheap: no I/O.
    package var status: OutboundLogStatus {
        state.withLock { state in
            OutboundLogStatus(
                peer: peer,
                streamID: streamID,
                nextSequenceNumber: state.nextSequence,
                acknowledgedUpTo: state.acknowledgedUpTo,
                pendingCount: state.pendingCount,
                pendingBytes: state.pendingBytes,
                oldestPendingEnqueuedAt: state.oldestPendingEnqueuedAt,
                missingRanges: state.missingRanges(),
                segmentCount: state.segmentFileCount,
                queuedAppends: state.queue.count,
                appendsCompleted: state.appendsCompleted,
                syncs: state.syncs,
                recordsSynced: state.recordsSynced
            )
        }
    }

    /// The sequence number the next append will get.
    package var nextSequenceNumber: UInt64 { state.withLock { $0.nextSequence } }

    /// Every sequence number up to this one is acknowledged.
    package var acknowledgedUpTo: UInt64 { state.withLock { $0.acknowledgedUpTo } }

    // MARK: Attempt counts

    /// How often this stream's numbers were sent, as last recorded with
    /// ``recordAttempts(_:)`` (by this run, or read from `attempts.log` at open). No I/O.
    package var sentAttempts: SentAttempts { state.withLock { $0.attempts } }

    /// Records how often this stream's numbers were sent, for the next run. Never blocks and
    /// does no I/O on the caller's thread: the writer writes the latest snapshot given (one
    /// `pwrite` into the page cache, never synced) on its next pass; snapshots given before
    /// that pass are coalesced. ``sentAttempts`` returns it at once.
    package func recordAttempts(_ attempts: SentAttempts) {
        let wake = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.attempts = attempts
            state.attemptsUnwritten = true
            return state.wake()
        }
        if wake { signal.wake() }
    }

    // MARK: Closing

    /// Stops accepting work, finishes what was queued (appends waiting for space fail with
    /// ``SpoolError/Code/closed``), writes the acknowledged mark and stops the log's thread.
    /// Blocks until then; idempotent. ``DataDirectory/close()`` calls it for every log.
    package func close() {
        let wake = state.withLock { state -> Bool in
            state.closed = true
            return state.wake()
        }
        if wake { signal.wake() }
        let running = thread.withLock { thread -> OSThread? in
            defer { thread = nil }
            return thread
        }
        running?.join()
    }

    /// Runs `job` on the log's thread (used by the dead-letter store for its file work).
    func enqueueJob(_ job: @escaping @Sendable () -> Void) -> Bool {
        let outcome = state.withLock { state -> (accepted: Bool, wake: Bool) in
            if state.closed { return (false, false) }
            state.jobs.append(job)
            return (true, state.wake())
        }
        if outcome.wake { signal.wake() }
        return outcome.accepted
    }

    func report(_ event: SpoolEvent) {
        configuration.onEvent?(event)
    }
}

/// A one-shot result that a thread can block on.
final class BlockingResult<Value: Sendable>: Sendable {
    private let value: Mutex<Result<Value, SpoolError>?> = Mutex(nil)
    private let signal: WakeEvent

    init() throws(SpoolError) {
        do { signal = try WakeEvent() } catch { throw .wakeEvent(error, doing: "waiting for the spool") }
    }

    func set(_ result: Result<Value, SpoolError>) {
        value.withLock { $0 = result }
        signal.wake()
    }

    func wait() throws(SpoolError) -> Value {
        signal.wait(timeoutNanoseconds: nil)
        let result = value.withLock { $0 }
        guard let result else { throw SpoolError(code: .io, message: "internal: woken without a result") }
        return try result.get()
    }
}
