import CourierSpool
import Synchronization

/// Sends a stream of messages to one peer from a plain loop, without waiting for each
/// message's sync: the way to send many messages from one task.
///
/// ``send(_:headers:)-([UInt8],_)`` returns as soon as the message is accepted, with a ``PendingReceipt``;
/// the publisher writes what was accepted while the previous write was syncing as one
/// append, so a loop of single sends gets group commit's throughput. Nothing is promised
/// until it is stored: await ``PendingReceipt/stored()`` for one message, or ``flush()``
/// for everything sent so far, before you treat messages as sent (acknowledge the input
/// they came from, answer a request).
///
/// ```swift
/// let publisher = node.publisher(to: "ledger")
/// for order in orders {
///     try await publisher.send(order.bytes)      // suspends only when too much is unstored
/// }
/// try await publisher.flush()                    // every order above is now durable
/// ```
///
/// Order and failures:
/// - Messages are stored in the order of the ``send(_:headers:)-([UInt8],_)`` calls that returned (send from
///   one task, or order the calls yourself).
/// - If a write fails (the disk is full or failing, the peer was removed, the node is
///   shutting down), that batch and every message accepted after it fail with the same
///   error, and the publisher stays failed: ``send(_:headers:)-([UInt8],_)`` and ``flush()`` throw it. What was
///   stored is therefore always a prefix of what was accepted. Make a new publisher to go
///   on.
///
/// Back-pressure: at most ``maxUnstoredMessages`` messages (and about ``maxUnstoredBytes``
/// bytes) may be accepted and not yet stored; ``send(_:headers:)-([UInt8],_)`` suspends beyond that. The peer's
/// spool limits apply as for ``Node/send(_:to:headers:timeToLive:)-([UInt8],_,_,_)``: when the spool
/// is full, writes wait for room (``NodeConfiguration/whenSpoolFull``), so the loop does too.
///
/// A publisher is `Sendable`; several publishers to the same peer interleave their batches.
public final class Publisher: Sendable {
    /// The receiving node's id.
    public let peer: String
    /// The most messages accepted but not yet stored before ``send(_:headers:)-([UInt8],_)`` suspends.
    public let maxUnstoredMessages: Int
    /// The most payload bytes accepted but not yet stored before ``send(_:headers:)-([UInt8],_)`` suspends (a
    /// single larger message is accepted when nothing else is unstored).
    public let maxUnstoredBytes: Int
    let timeToLive: Duration?
    let core: NodeCore
    private let state: Mutex<State>

    private struct State {
        /// Accepted messages not submitted yet (a write is in progress).
        var filling: [SpoolEntry] = []
        var fillingBytes = 0
        var fillingBatch: PendingBatch?
        /// Whether a write is in progress (at most one: the next batch fills meanwhile).
        var writing = false
        var unstoredMessages = 0
        var unstoredBytes = 0
        var batchesMade: UInt64 = 0
        /// Every batch up to this number has finished.
        var finishedThrough: UInt64 = 0
        var failure: CourierError?
        var nextWaiter: UInt64 = 0
        var roomWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var flushWaiters: [UInt64: (through: UInt64, continuation: CheckedContinuation<Void, Never>)] = [:]
    }

    init(core: NodeCore, peer: String, timeToLive: Duration?, maxUnstoredMessages: Int, maxUnstoredBytes: Int) {
        self.core = core
        self.peer = peer
        self.timeToLive = timeToLive
        // A batch is one append: it must fit the spool's own limits.
        self.maxUnstoredMessages = max(1, min(maxUnstoredMessages, core.configuration.maxSpoolMessages))
        self.maxUnstoredBytes = max(1, min(maxUnstoredBytes, Int(clamping: core.configuration.maxSpoolBytes)))
        self.state = Mutex(State())
    }

    /// Accepts `payload` for the peer and returns at once, unless ``maxUnstoredMessages``
    /// messages are already waiting to be stored (then it suspends until there is room).
    ///
    /// The message is not yet durable when this returns: await the receipt's
    /// ``PendingReceipt/stored()``, or ``flush()``.
    ///
    /// `headers` go with the message (``IncomingMessage/headers``); see ``MessageHeaders``.
    ///
    /// Throws ``CourierError/Code/messageTooLarge`` or ``CourierError/Code/invalidHeaders``
    /// (nothing accepted; the publisher goes on),
    /// the error that failed an earlier write (the publisher has failed; see the type's
    /// documentation), ``CourierError/Code/shutDown``, ``CourierError/Code/unknownPeer``, and
    /// ``CourierError/Code/cancelled`` if the task is cancelled while it waits for room.
    @discardableResult
    public func send(_ payload: [UInt8], headers: MessageHeaders = [:]) async throws(CourierError) -> PendingReceipt {
        try core.checkSize(of: [payload], to: peer)
        let entry = SpoolEntry(payload: payload, expiresAt: core.expiry(timeToLive), headers: try headers.encoded())
        while true {
            let step = try state.withLock { state throws(CourierError) -> Step in
                if let failure = state.failure { throw failure }
                let full = state.unstoredMessages > 0
                    && (state.unstoredMessages >= maxUnstoredMessages || state.unstoredBytes + payload.count > maxUnstoredBytes)
                if full { return .wait }
                let batch: PendingBatch
                if let filling = state.fillingBatch {
                    batch = filling
                } else {
                    state.batchesMade += 1
                    batch = PendingBatch(number: state.batchesMade)
                    state.fillingBatch = batch
                }
                state.filling.append(entry)
                state.fillingBytes += payload.count
                state.unstoredMessages += 1
                state.unstoredBytes += payload.count
                let receipt = PendingReceipt(batch: batch, index: UInt64(state.filling.count - 1), peer: peer, core: core)
                return .accepted(receipt, submit: state.writing ? nil : Self.takeFilling(&state))
            }
            switch step {
            case .accepted(let receipt, let submit):
                if let submit, let error = write(submit) { throw error }
                return receipt
            case .wait:
                try await waitForRoom()
            }
        }
    }

    /// Waits until every message accepted before the call is stored, and throws the
    /// publisher's failure if a write failed (see the type's documentation).
    ///
    /// Throws ``CourierError/Code/cancelled`` if the waiting task is cancelled (the messages
    /// are unaffected).
    public func flush() async throws(CourierError) {
        let id: UInt64? = state.withLock { state in
            let through = state.batchesMade
            guard state.finishedThrough < through, state.failure == nil else { return nil }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        if let id {
            let cancelled = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { state -> Bool in
                        if state.finishedThrough >= state.batchesMade || state.failure != nil || Task.isCancelled { return true }
                        state.flushWaiters[id] = (state.batchesMade, continuation)
                        return false
                    }
                    if ready { continuation.resume() }
                }
                return Task.isCancelled
            } onCancel: {
                state.withLock { $0.flushWaiters.removeValue(forKey: id) }?.continuation.resume()
            }
            if cancelled {
                throw CourierError(.cancelled, "the task waiting in flush() was cancelled; the messages are unaffected")
            }
        }
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// How many accepted messages are not stored yet.
    public var unstoredCount: Int { state.withLock { $0.unstoredMessages } }

    // MARK: Writing

    private enum Step {
        case accepted(PendingReceipt, submit: Submission?)
        case wait
    }

    private struct Submission {
        var entries: [SpoolEntry]
        var bytes: Int
        var batch: PendingBatch
    }

    private static func takeFilling(_ state: inout State) -> Submission? {
        guard let batch = state.fillingBatch, !state.filling.isEmpty else { return nil }
        let submission = Submission(entries: state.filling, bytes: state.fillingBytes, batch: batch)
        state.filling = []
        state.fillingBytes = 0
        state.fillingBatch = nil
        state.writing = true
        return submission
    }

    /// Submits a batch; returns the error when it failed at once (no such peer, shutting
    /// down), after failing the batch.
    @discardableResult
    private func write(_ submission: Submission) -> CourierError? {
        let log: OutboundLog
        do {
            log = try core.sendingLog(for: peer)
        } catch {
            finished(submission, .failure(error))
            return error
        }
        let peer = self.peer
        core.spool(submission.entries, to: peer, log: log) { [self] result in
            finished(submission, result.map { (log.streamID, $0.lowerBound) }
                .mapError { CourierError(spoolError: $0, doing: "spooling for \(peer)") })
        }
        return nil
    }

    /// A write finished: settle its receipts, start the next write (or fail what filled
    /// meanwhile, after a failure), and wake whoever waits for room or a flush.
    private func finished(_ submission: Submission, _ result: PendingBatch.Stored) {
        submission.batch.settle(result)
        var failed: [Submission] = []
        let (next, wake) = state.withLock { state -> (Submission?, [CheckedContinuation<Void, Never>]) in
            state.writing = false
            state.unstoredMessages -= submission.entries.count
            state.unstoredBytes -= submission.bytes
            state.finishedThrough = submission.batch.number
            if case .failure(let error) = result, state.failure == nil { state.failure = error }
            var next = Self.takeFilling(&state)
            if state.failure != nil, let doomed = next {
                // Nothing after a failed write is stored: what was stored stays a prefix.
                failed.append(doomed)
                state.writing = false
                state.unstoredMessages -= doomed.entries.count
                state.unstoredBytes -= doomed.bytes
                state.finishedThrough = doomed.batch.number
                next = nil
            }
            var wake = Array(state.roomWaiters.values)
            state.roomWaiters = [:]
            for (id, waiter) in state.flushWaiters where waiter.through <= state.finishedThrough || state.failure != nil {
                wake.append(waiter.continuation)
                state.flushWaiters[id] = nil
            }
            return (next, wake)
        }
        if case .failure(let error) = result {
            for doomed in failed { doomed.batch.settle(.failure(error)) }
        }
        for waiter in wake { waiter.resume() }
        if let next { write(next) }
    }

    private func waitForRoom() async throws(CourierError) {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let cancelled = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    // Room was made since the check, or nothing is being written to make it.
                    if !state.writing || state.failure != nil || Task.isCancelled { return true }
                    state.roomWaiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
            return Task.isCancelled
        } onCancel: {
            state.withLock { $0.roomWaiters.removeValue(forKey: id) }?.resume()
        }
        if cancelled {
            throw CourierError(.cancelled, "the task waiting for room in the publisher was cancelled; the message was not accepted")
        }
    }
}

/// A message a ``Publisher`` accepted: the way to learn when it is stored, and then its
/// outcome.
public struct PendingReceipt: Sendable {
    let batch: PendingBatch
    let index: UInt64
    /// The receiving node's id.
    public let peer: String
    let core: NodeCore

    /// Waits until the message is durable under the node's durability policy, and returns
    /// its ``Receipt`` (with its ``MessageID``).
    ///
    /// Throws the error that failed its write (the message was not stored and will not be
    /// sent), or ``CourierError/Code/cancelled`` if the waiting task is cancelled.
    public func stored() async throws(CourierError) -> Receipt {
        let (stream, first) = try await batch.stored()
        return Receipt(id: MessageID(peer: peer, stream: stream, sequence: first + index), core: core)
    }

    /// Waits until the message is stored and then until it has an outcome: the same as
    /// `try await stored().outcome()`.
    public func outcome() async throws(CourierError) -> Outcome {
        try await stored().outcome()
    }
}

extension Node {
    /// A ``Publisher`` that sends messages to `peer` from a loop without waiting for each
    /// one's sync.
    ///
    /// - Parameters:
    ///   - peer: the receiving node's id.
    ///   - timeToLive: after this long undelivered, a message expires; `nil` uses
    ///     ``NodeConfiguration/defaultTimeToLive``.
    ///   - maxUnstoredMessages: how many messages may wait to be stored before
    ///     ``Publisher/send(_:headers:)-([UInt8],_)`` suspends (at most the spool's ``NodeConfiguration/maxSpoolMessages``).
    ///   - maxUnstoredBytes: the same in payload bytes (at most ``NodeConfiguration/maxSpoolBytes``).
    public func publisher(to peer: String, timeToLive: Duration? = nil,
                          maxUnstoredMessages: Int = 16_384, maxUnstoredBytes: Int = 16 << 20) -> Publisher {
        Publisher(core: core, peer: peer, timeToLive: timeToLive,
                  maxUnstoredMessages: maxUnstoredMessages, maxUnstoredBytes: maxUnstoredBytes)
    }
}
