import CourierSpool
import Synchronization

typealias OutcomeWaiter = CheckedContinuation<Result<Outcome, CourierError>, Never>
typealias DrainWaiter = CheckedContinuation<Result<Void, CourierError>, Never>
/// Outcomes other than processed that the dead letters will answer for once their letters
/// are stored, in number order (recorded as decided, taken off the front as the spool lets
/// go of their numbers).
typealias RecentOutcomes = OrderedNumberMap<Outcome>

/// What the application may ask of outcomes from any task: where each peer's stream
/// stands, the outcomes decided individually, and who is waiting. Written by the I/O thread
/// once per acknowledgement frame, not once per message.
final class OutcomeBook: Sendable {
    /// One peer's entry: a reference, so that reading it under the lock copies nothing (it
    /// never leaves the lock).
    private final class Peer {
        var stream: UInt64
        var processedUpTo: UInt64
        /// Outcomes of numbers settled one by one (selective acks, rejections, expiries).
        var individually: [UInt64: Outcome] = [:]
        /// ``individually``'s size after its last pruning: the next one waits until it has
        /// doubled, so pruning costs O(1) per outcome however many are kept.
        var prunedTo = 0
        /// The peer's dead letters, which record every number's outcome other than
        /// processed once its letter is stored (nil: no such record; everything is kept here).
        var recorded: (@Sendable (UInt64) -> Outcome?)?
        /// With `recorded`: outcomes other than processed, until the dead letters answer
        /// for them (``OutcomeBook/forgetRecorded(peer:upTo:except:)``).
        var recent = RecentOutcomes()
        var waiters: [UInt64: [Int: OutcomeWaiter]] = [:]
        var drainWaiters: [Int: DrainWaiter] = [:]
        /// Bumped by every accepted send; a drained report from an older generation is stale.
        var generation = 0
        var drained = false
        var statistics: PeerStatistics?

        init(stream: UInt64, processedUpTo: UInt64) {
            self.stream = stream
            self.processedUpTo = processedUpTo
        }
    }

    private struct State {
        var peers: [String: Peer] = [:]
        var closed = false
        var nextToken = 0
        /// Tokens whose task was cancelled before its waiter was registered.
        var cancelledEarly: Set<Int> = []
    }

    private let state = Mutex(State())
    /// How many individually settled outcomes are remembered per peer.
    private let memory = 100_000

    /// Starts the book of `peer`'s stream, where every number up to `processedUpTo` is
    /// finished: processed, unless `decided` (earlier runs' dead letters) says otherwise.
    ///
    /// `recorded` reads the outcome the peer's dead letters hold for a number. With it, the
    /// book keeps in memory only what the dead letters do not answer yet: earlier runs'
    /// outcomes at or below `processedUpTo` are read from there when asked, and a number's
    /// outcome other than processed leaves memory once its letter is stored
    /// (``forgetRecorded(peer:upTo:except:)``). Rejections then cost no memory here for the life of
    /// the stream.
    func open(peer: String, stream: UInt64, processedUpTo: UInt64, decided: [UInt64: Outcome] = [:],
              recorded: (@Sendable (UInt64) -> Outcome?)? = nil) {
        state.withLock { state in
            if state.peers[peer]?.stream != stream {
                let entry = Peer(stream: stream, processedUpTo: processedUpTo)
                if recorded == nil {
                    entry.individually = decided
                } else {
                    for (sequence, outcome) in decided.sorted(by: { $0.key < $1.key }) where sequence > processedUpTo {
                        entry.recent.record(outcome, for: sequence)
                    }
                }
                entry.recorded = recorded
                state.peers[peer] = entry
            }
        }
    }

    /// How many outcomes the book holds in memory for `peer` (for tests and diagnostics).
    func heldCount(peer: String) -> Int {
        state.withLock { state in state.peers[peer].map { $0.individually.count + $0.recent.count } ?? 0 }
    }

    /// The spool let go of every number up to `mark`, so each one decided other than
    /// processed has its dead letter stored, recording that outcome, except the numbers
    /// in `unrecorded` (their letter's write failed, or the log no longer held the record):
    /// the others leave memory, and ``outcome(of:)`` reads them from the dead letters.
    /// Returns the number up to which it went (those above the processed mark the book
    /// knows wait for a later call, which needs their `unrecorded` again).
    @discardableResult
    func forgetRecorded(peer: String, upTo mark: UInt64, except unrecorded: Set<UInt64> = []) -> UInt64 {
        state.withLock { state in
            guard let entry = state.peers[peer], entry.recorded != nil else { return 0 }
            let through = min(mark, entry.processedUpTo)
            entry.recent.removeFirst(upTo: through) { sequence, outcome in
                if !unrecorded.isEmpty, unrecorded.contains(sequence) { entry.individually[sequence] = outcome }
            }
            return through
        }
    }

    /// Publishes settled outcomes and wakes their waiters.
    func settle(peer: String, processedUpTo: UInt64, individually: [(UInt64, Outcome)]) {
        let ready = state.withLock { state -> [(OutcomeWaiter, Outcome)] in
            var ready: [(OutcomeWaiter, Outcome)] = []
            guard let entry = state.peers[peer] else { return ready }
            let previous = entry.processedUpTo
            entry.processedUpTo = max(previous, processedUpTo)
            for (sequence, outcome) in individually where outcome != .processed || sequence > entry.processedUpTo {
                if outcome != .processed, entry.recorded != nil {
                    entry.recent.record(outcome, for: sequence)
                } else {
                    entry.individually[sequence] = outcome
                }
            }
            if entry.individually.count > max(memory, 2 * entry.prunedTo) {
                // Only processed outcomes at or below the cumulative mark are forgotten (they
                // read the same without an entry); the others are what `outcome(of:)` must
                // never get wrong, and the dead-letter store holds as many in memory anyway.
                let mark = entry.processedUpTo
                entry.individually = entry.individually.filter { $0.key > mark || $0.value != .processed }
                entry.prunedTo = entry.individually.count
            }
            guard !entry.waiters.isEmpty else { return ready }
            func wake(_ sequence: UInt64) {
                guard let waiters = entry.waiters[sequence], let outcome = Self.outcome(sequence, in: entry) else { return }
                ready += waiters.values.map { ($0, outcome) }
                entry.waiters[sequence] = nil
            }
            // Visit whichever is smaller: the newly settled numbers, or the waiters.
            let advanced = entry.processedUpTo - previous
            if advanced + UInt64(individually.count) < UInt64(entry.waiters.count) {
                if advanced > 0 { for sequence in (previous + 1)...entry.processedUpTo { wake(sequence) } }
                for (sequence, _) in individually { wake(sequence) }
            } else {
                for sequence in Array(entry.waiters.keys) { wake(sequence) }
            }
            return ready
        }
        for (continuation, outcome) in ready { continuation.resume(returning: .success(outcome)) }
    }

    private static func outcome(_ sequence: UInt64, in peer: Peer) -> Outcome? {
        if let outcome = peer.individually[sequence] ?? peer.recent[sequence] { return outcome }
        guard sequence <= peer.processedUpTo else { return nil }
        return peer.recorded?(sequence) ?? .processed
    }

    /// The outcome of `id`, waiting for it if it is not known yet. Cancelling the waiting
    /// task ends the wait with ``CourierError/Code/cancelled``.
    func outcome(of id: MessageID) async throws(CourierError) -> Outcome {
        // Already known (the usual case for all but the first of a batch): no suspension.
        if let known = state.withLock({ Self.known(id, in: $0) }) { return try known.get() }
        let token = state.withLock { state in
            defer { state.nextToken += 1 }
            return state.nextToken
        }
        return try await withTaskCancellationHandler {
            let result = await withCheckedContinuation { (waiter: OutcomeWaiter) in
                let immediate: Result<Outcome, CourierError>? = state.withLock { state in
                    if state.cancelledEarly.remove(token) != nil { return .failure(Self.cancelled) }
                    if let known = Self.known(id, in: state) { return known }
                    state.peers[id.peer]!.waiters[id.sequence, default: [:]][token] = waiter
                    return nil
                }
                if let immediate { waiter.resume(returning: immediate) }
            }
            // A cancellation that came after the waiter was resumed left its token behind.
            state.withLock { _ = $0.cancelledEarly.remove(token) }
            return result
        } onCancel: {
            let waiter: OutcomeWaiter? = state.withLock { state in
                guard let waiter = state.peers[id.peer]?.waiters[id.sequence]?.removeValue(forKey: token) else {
                    state.cancelledEarly.insert(token)
                    return nil
                }
                return waiter
            }
            waiter?.resume(returning: .failure(Self.cancelled))
        }.get()
    }

    /// The outcomes of `ids`, in order: every outcome already known is read under one lock,
    /// and the wait is only for the first one not known yet (then again under one lock).
    func outcomes(of ids: [MessageID]) async throws(CourierError) -> [Outcome] {
        var results: [Outcome] = []
        results.reserveCapacity(ids.count)
        while results.count < ids.count {
            let failure: CourierError? = state.withLock { state in
                // A batch's ids usually share one peer: look its entry up once per run.
                var run: (peer: String, entry: Peer?)?
                while results.count < ids.count {
                    let id = ids[results.count]
                    if run?.peer != id.peer { run = (id.peer, state.peers[id.peer]) }
                    guard let known = Self.known(id, entry: run?.entry, closed: state.closed) else { break }
                    switch known {
                    case .success(let outcome): results.append(outcome)
                    case .failure(let error): return error
                    }
                }
                return nil
            }
            if let failure { throw failure }
            if results.count < ids.count { results.append(try await outcome(of: ids[results.count])) }
        }
        return results
    }

    /// The settled outcomes of `peer`'s stream `stream` from number `first` on, at most
    /// `limit`, stopping at the first one still pending (or never assigned): read under one
    /// lock, never waiting. Empty when `first` is pending; an error when a wait on it would
    /// end with one (the node stopped, the peer or stream is gone).
    func settled(peer: String, stream: UInt64, from first: UInt64, limit: Int) -> Result<[Outcome], CourierError> {
        state.withLock { state in
            var outcomes: [Outcome] = []
            let entry = state.peers[peer]
            while outcomes.count < limit {
                let id = MessageID(peer: peer, stream: stream, sequence: first + UInt64(outcomes.count))
                guard let known = Self.known(id, entry: entry, closed: state.closed) else { break }
                switch known {
                case .success(let outcome): outcomes.append(outcome)
                case .failure(let error): if outcomes.isEmpty { return .failure(error) } else { return .success(outcomes) }
                }
            }
            return .success(outcomes)
        }
    }

    /// The outcome of `id` if it is settled, or the error that ends the wait; nil while
    /// it is pending (the peer's entry then exists).
    private static func known(_ id: MessageID, in state: State) -> Result<Outcome, CourierError>? {
        known(id, entry: state.peers[id.peer], closed: state.closed)
    }

    /// ``known(_:in:)`` with the peer's entry already looked up.
    private static func known(_ id: MessageID, entry: Peer?, closed: Bool) -> Result<Outcome, CourierError>? {
        if closed {
            return .failure(CourierError(.shutDown, "the node stopped before the outcome of \(id) was known; it will be learned after the next start"))
        }
        guard let entry, entry.stream == id.stream else {
            return .failure(CourierError(.unknownPeer, "no stream \(String(id.stream, radix: 16)) to peer \(id.peer) in this node"))
        }
        return outcome(id.sequence, in: entry).map { .success($0) }
    }

    private static let cancelled = CourierError(.cancelled, "the waiting task was cancelled; the message itself is unaffected")

    // MARK: Draining

    /// A send was accepted for `peer`: it is not drained until the I/O thread says so again.
    func undrain(peer: String) {
        state.withLock { state in
            state.peers[peer]?.generation += 1
            state.peers[peer]?.drained = false
        }
    }

    func drainedFlag(_ peer: String) -> Bool {
        state.withLock { $0.peers[peer]?.drained ?? true }
    }

    /// The current generation, read by the I/O thread before it checks for drained.
    func generation(of peer: String) -> Int {
        state.withLock { $0.peers[peer]?.generation ?? 0 }
    }

    /// The I/O thread saw nothing pending for `peer` as of `generation`.
    func drained(peer: String, generation: Int) {
        let waiters: [DrainWaiter] = state.withLock { state in
            guard state.peers[peer]?.generation == generation else { return [] }
            state.peers[peer]!.drained = true
            defer { state.peers[peer]!.drainWaiters = [:] }
            return Array(state.peers[peer]!.drainWaiters.values)
        }
        for waiter in waiters { waiter.resume(returning: .success(())) }
    }

    /// Returns once `peer` has nothing pending. Cancelling the waiting task ends the wait.
    func waitUntilDrained(_ peer: String) async throws(CourierError) {
        let token = state.withLock { state in
            defer { state.nextToken += 1 }
            return state.nextToken
        }
        try await withTaskCancellationHandler {
            let result = await withCheckedContinuation { (done: DrainWaiter) in
                let immediate: Result<Void, CourierError>? = state.withLock { state in
                    if state.cancelledEarly.remove(token) != nil { return .failure(Self.cancelled) }
                    if state.closed { return .failure(CourierError(.shutDown, "the node is stopped")) }
                    guard let drained = state.peers[peer]?.drained else { return .failure(CourierError(.unknownPeer, "no peer \(peer) is configured")) }
                    if drained { return .success(()) }
                    state.peers[peer]!.drainWaiters[token] = done
                    return nil
                }
                if let immediate { done.resume(returning: immediate) }
            }
            state.withLock { _ = $0.cancelledEarly.remove(token) }
            return result
        } onCancel: {
            let waiter: DrainWaiter? = state.withLock { state in
                guard let waiter = state.peers[peer]?.drainWaiters.removeValue(forKey: token) else {
                    state.cancelledEarly.insert(token)
                    return nil
                }
                return waiter
            }
            waiter?.resume(returning: .failure(Self.cancelled))
        }.get()
    }

    // MARK: Statistics and shutdown

    func publish(_ statistics: PeerStatistics) {
        state.withLock { $0.peers[statistics.peer]?.statistics = statistics }
    }

    func statistics(for peer: String) -> PeerStatistics? {
        state.withLock { $0.peers[peer]?.statistics }
    }

    /// The peer was removed: its waiters fail, and so does every later wait on it, until it is
    /// added again (its entry goes; a wait on an entry nothing settles would never end).
    func remove(peer: String) {
        close(peers: [peer], removing: true, CourierError(.unknownPeer, "peer \(peer) was removed before this was known; add it again to resume delivery and learn the outcome"))
    }

    /// Fails every waiter: the node is stopping.
    func closeAll() {
        let names = state.withLock { state in
            state.closed = true
            return Array(state.peers.keys)
        }
        close(peers: names, removing: false, CourierError(.shutDown, "the node stopped before this was known; it will be learned after the next start"))
    }

    private func close(peers names: [String], removing: Bool, _ error: CourierError) {
        let (outcomeWaiters, drainWaiters) = state.withLock { state in
            var outcomes: [OutcomeWaiter] = []
            var drains: [DrainWaiter] = []
            for name in names {
                guard let entry = state.peers[name] else { continue }
                outcomes += entry.waiters.values.flatMap(\.values)
                drains += entry.drainWaiters.values
                state.peers[name]?.waiters = [:]
                state.peers[name]?.drainWaiters = [:]
                if removing { state.peers[name] = nil }
            }
            return (outcomes, drains)
        }
        for waiter in outcomeWaiters { waiter.resume(returning: .failure(error)) }
        for waiter in drainWaiters { waiter.resume(returning: .failure(error)) }
    }
}

extension OutcomeBook {
    /// Whether the I/O thread last found `peer` with nothing pending.
    func isDrained(_ peer: String) -> Bool {
        drainedFlag(peer)
    }
}
