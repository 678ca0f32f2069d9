import Logging
import Synchronization
import SystemPackage
import CoreMetrics

/// One peer's dead letters: records that were rejected, expired or ran out of attempts,
/// each with its reason and time, in `deadletters.log` beside the peer's log.
///
/// The synchronous methods do their file work (and `fdatasync`) on the calling thread:
/// call them from a thread that may block. The `async` and completion forms run it on the
/// peer log's own thread.
package final class DeadLetterStore: Sendable {
    private struct State {
        var file: RecordFile
        var live: LetterIndex
        var nextID: UInt64
        /// The outcome of every number ever dead-lettered here, by stream and sequence
        /// number: requeued and removed letters included (their number's outcome does not
        /// change when the payload is sent again under a new number).
        var outcomes: OutcomeIndex
        /// Letters the log's thread encoded and has not written yet: it writes them with
        /// one write and one sync (``completeWrittenLetters()``).
        var unwrittenBytes = ByteWriter(capacity: 0)
        var unwritten: [Unwritten] = []
        /// Completions of batches (``add(_:streamID:completion:)``) written this round.
        var afterRound: [@Sendable (Result<Void, SpoolError>) -> Void] = []
    }

    private struct Unwritten {
        var id: UInt64
        var start: Int
        var length: Int
        var stream: UInt64
        var sequence: UInt64
        var reason: DeadLetterReason
        var completion: (@Sendable (Result<Void, SpoolError>) -> Void)?
    }

    /// The peer whose dead letters these are.
    package let peer: String
    private let state: Mutex<State>
    private let configuration: SpoolConfiguration
    private let log: Mutex<OutboundLogReference?> = Mutex(nil)

    private struct OutboundLogReference: Sendable {
        // The log owns this store; a strong reference back would be a cycle.
        weak var log: OutboundLog?
    }

    init(peer: String, directory: FilePath, configuration: SpoolConfiguration, metrics: SpoolMetrics) throws(SpoolError) {
        self.peer = peer
        self.configuration = configuration
        let opened = try RecordFile.open(
            path: directory.appending("deadletters.log"), kind: .deadLetters, peer: peer,
            maxRecordSize: configuration.maxRecordSize + 1024
        )
        var live = LetterIndex()
        var nextID: UInt64 = 1
        var outcomes = OutcomeIndex()
        for entry in opened.entries {
            nextID = max(nextID, entry.header.sequenceNumber + 1)
            switch entry.header.type {
            case RecordFormat.RecordType.deadLetter.rawValue:
                live[entry.header.sequenceNumber] = LetterLocation(offset: entry.offset, length: entry.header.length)
                if let (stream, sequence, reason) = DeadLetter.outcome(body: entry.body) {
                    outcomes.record(reason, stream: stream, sequence: sequence)
                }
            case RecordFormat.RecordType.deadLetterRemoval.rawValue:
                live[entry.header.sequenceNumber] = nil
            default:
                break
            }
        }
        for event in opened.events {
            if case .corruptionFound = event { metrics.corruptions.increment() }
            configuration.logger.error("spool: dead-letter store repaired on open", metadata: ["peer": "\(peer)", "event": "\(event)"])
            configuration.onEvent?(event)
        }
        state = Mutex(State(file: opened.file, live: live, nextID: nextID, outcomes: outcomes))
    }

    func attach(to log: OutboundLog) {
        self.log.withLock { $0 = OutboundLogReference(log: log) }
    }

    private var owner: OutboundLog? { log.withLock { $0?.log } }

    /// How many dead letters the store holds. No I/O.
    package var count: Int { state.withLock { $0.live.count } }

    /// The outcome of each number of stream `streamID` ever dead-lettered here (rejected,
    /// expired, out of attempts), by sequence number, including letters since requeued or
    /// removed. No I/O.
    package func outcomes(streamID: UInt64) -> [UInt64: DeadLetterReason] {
        state.withLock { $0.outcomes.all(stream: streamID) }
    }

    /// The outcome recorded for number `sequence` of stream `streamID`, if it was ever
    /// dead-lettered here (as ``outcomes(streamID:)``, for one number). No I/O.
    package func outcome(streamID: UInt64, sequence: UInt64) -> DeadLetterReason? {
        state.withLock { $0.outcomes.reason(stream: streamID, sequence: sequence) }
    }

    /// Stores `record` as a dead letter, durably (written and synced), and returns it.
    @discardableResult
    package func add(_ record: SpoolRecord, streamID: UInt64, reason: DeadLetterReason) throws(SpoolError) -> DeadLetter {
        try state.withLock { state throws(SpoolError) -> DeadLetter in
            let (letter, bytes) = Self.encode(record, streamID: streamID, reason: reason, id: state.nextID)
            let offset = try state.file.append(bytes, sync: true)
            state.live[letter.id] = LetterLocation(offset: offset, length: bytes.count)
            state.outcomes.record(reason, stream: streamID, sequence: record.sequenceNumber)
            state.nextID += 1
            logAdded(record, reason)
            return letter
        }
    }

    private static func encode(_ record: SpoolRecord, streamID: UInt64, reason: DeadLetterReason, id: UInt64) -> (DeadLetter, [UInt8]) {
        var writer = ByteWriter(capacity: 128 + MessageBody.overhead(headers: record.headers) + record.payload.count)
        let letter = encode(record, streamID: streamID, reason: reason, id: id, into: &writer)
        return (letter, writer.bytes)
    }

    /// Encodes the letter's record at the end of `writer`.
    private static func encode(_ record: SpoolRecord, streamID: UInt64, reason: DeadLetterReason, id: UInt64,
                               into writer: inout ByteWriter) -> DeadLetter {
        let letter = DeadLetter(id: id, record: record, streamID: streamID, reason: reason, deadLetteredAt: wallClockNanoseconds())
        RecordFormat.encode(
            into: &writer, type: .deadLetter, sequenceNumber: letter.id, enqueuedAt: letter.deadLetteredAt,
            expiresAt: record.expiresAt, attempt: record.attempt, flags: MessageBody.flags(record.flags, headers: record.headers)
        ) { letter.encodeBody(into: &$0) }
        return letter
    }

    private func logAdded(_ record: SpoolRecord, _ reason: DeadLetterReason) {
        configuration.logger.info("spool: dead-lettered a record", metadata: ["peer": "\(peer)", "sequence": "\(record.sequenceNumber)", "reason": "\(reason)"])
    }

    /// Stores a dead letter on the log's thread; `completion` runs there once it is durable.
    /// Letters stored together share one write and one sync (group commit): the thread
    /// encodes every letter queued since its last round, then writes and syncs them at once
    /// (``completeWrittenLetters()``).
    package func add(_ record: SpoolRecord, streamID: UInt64, reason: DeadLetterReason, completion: @escaping @Sendable (Result<DeadLetter, SpoolError>) -> Void) {
        onLogThread(orFail: completion) {
            self.buffer(record, streamID: streamID, reason: reason, completion: completion)
        }
    }

    /// A number decided for the dead letters: its reason, and its record when the caller
    /// has it (nil: read from the log's pending records).
    package struct Decision: Sendable {
        package var sequence: UInt64
        package var reason: DeadLetterReason
        package var record: SpoolRecord?

        package init(sequence: UInt64, reason: DeadLetterReason, record: SpoolRecord?) {
            self.sequence = sequence
            self.reason = reason
            self.record = record
        }
    }

    /// Stores several decided numbers of stream `streamID` as dead letters with one job on
    /// the log's thread: the records it must read come from one read of the pending range,
    /// and all are written and synced with the round's other letters. `completion` runs
    /// there once they are durable, with each number's letter (nil when the log no longer
    /// holds its record), in order, or with the failure.
    package func add(_ decisions: [Decision], streamID: UInt64,
                     completion: @escaping @Sendable (Result<[(UInt64, DeadLetter?)], SpoolError>) -> Void) {
        onLogThread(orFail: completion) {
            var letters: [(UInt64, DeadLetter?)] = []
            do throws(SpoolError) {
                let read = try self.pendingRecords(for: decisions)
                letters.reserveCapacity(decisions.count)
                for (index, decision) in decisions.enumerated() {
                    guard let record = decision.record ?? read[index] else {
                        letters.append((decision.sequence, nil))
                        continue
                    }
                    letters.append((decision.sequence, self.buffer(record, streamID: streamID, reason: decision.reason)))
                }
            } catch {
                completion(.failure(error))
                return
            }
            let result = letters
            self.state.withLock { $0.afterRound.append { completion($0.map { result }) } }
        }
    }

    /// The log's pending records of the decisions given without one, by the decision's
    /// index (nil: given, or no longer held): one pass over the pending range in reads of a
    /// few MiB each, matched in order (decisions come in increasing order; others are
    /// sorted first).
    private func pendingRecords(for decisions: [Decision]) throws(SpoolError) -> [SpoolRecord?] {
        var found = [SpoolRecord?](repeating: nil, count: decisions.count)
        let missing = decisions.indices.filter { decisions[$0].record == nil }
        guard !missing.isEmpty, let log = owner else { return found }
        var wanted = missing.map { (sequence: decisions[$0].sequence, index: $0) }
        if !zip(wanted, wanted.dropFirst()).allSatisfy({ $0.sequence <= $1.sequence }) { wanted.sort { $0.sequence < $1.sequence } }
        let high = wanted[wanted.count - 1].sequence
        var next = wanted[0].sequence
        var position = 0
        while next <= high, position < wanted.count {
            let records = try log.readPending(from: next, limit: Int(high - next + 1))
            guard let last = records.last, last.sequenceNumber >= next else { break }
            for record in records {
                while position < wanted.count, wanted[position].sequence < record.sequenceNumber { position += 1 }
                while position < wanted.count, wanted[position].sequence == record.sequenceNumber {
                    found[wanted[position].index] = record
                    position += 1
                }
            }
            next = last.sequenceNumber + 1
        }
        return found
    }

    /// Encodes a letter for the log's thread's next ``completeWrittenLetters()``.
    @discardableResult
    private func buffer(_ record: SpoolRecord, streamID: UInt64, reason: DeadLetterReason,
                        completion: (@Sendable (Result<DeadLetter, SpoolError>) -> Void)? = nil) -> DeadLetter {
        let letter = state.withLock { state -> DeadLetter in
            let start = state.unwrittenBytes.bytes.count
            let letter = Self.encode(record, streamID: streamID, reason: reason, id: state.nextID, into: &state.unwrittenBytes)
            state.nextID += 1
            var done: (@Sendable (Result<Void, SpoolError>) -> Void)?
            if let completion {
                done = { result in completion(result.map { letter }) }
            }
            state.unwritten.append(Unwritten(id: letter.id, start: start, length: state.unwrittenBytes.bytes.count - start, stream: streamID,
                                             sequence: record.sequenceNumber, reason: reason, completion: done))
            return letter
        }
        logAdded(record, reason)
        return letter
    }

    /// Writes every letter encoded since the last call with one write, syncs once, and
    /// completes them (with the failure, if the write or the sync fails). Called by the
    /// log's thread after each round of jobs; nothing to do costs nothing.
    func completeWrittenLetters() {
        // The write is under the lock (the file's end moves); the sync is not: readers of
        // the outcomes (the I/O thread) never wait for the disk.
        let (letters, batches, written) = state.withLock { state -> ([Unwritten], [@Sendable (Result<Void, SpoolError>) -> Void], Result<RecordFile, SpoolError>) in
            let batches = state.afterRound
            state.afterRound = []
            guard !state.unwritten.isEmpty else { return ([], batches, .success(state.file)) }
            defer {
                state.unwritten = []
                state.unwrittenBytes.bytes.removeAll(keepingCapacity: state.unwrittenBytes.bytes.capacity <= 1 << 22)
            }
            do throws(SpoolError) {
                let base = try state.file.append(state.unwrittenBytes.bytes, sync: false)
                for letter in state.unwritten {
                    state.live[letter.id] = LetterLocation(offset: base + Int64(letter.start), length: letter.length)
                    state.outcomes.record(letter.reason, stream: letter.stream, sequence: letter.sequence)
                }
                return (state.unwritten, batches, .success(state.file))
            } catch {
                return (state.unwritten, batches, .failure(error))
            }
        }
        guard !letters.isEmpty else {
            for batch in batches { batch(.success(())) }  // nothing of theirs to write
            return
        }
        let result = written.flatMap { file -> Result<Void, SpoolError> in
            do throws(SpoolError) {
                try file.sync()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        if case .failure(let error) = result {
            configuration.logger.error("spool: writing dead letters failed", metadata: ["peer": "\(peer)", "count": "\(letters.count)", "error": "\(error)"])
        }
        for letter in letters { letter.completion?(result) }
        for batch in batches { batch(result) }
    }

    /// Stores a dead letter (the file work runs on the log's thread).
    @discardableResult
    package func add(_ record: SpoolRecord, streamID: UInt64, reason: DeadLetterReason) async throws(SpoolError) -> DeadLetter {
        try await withCheckedContinuation { (c: CheckedContinuation<Result<DeadLetter, SpoolError>, Never>) in
            add(record, streamID: streamID, reason: reason) { c.resume(returning: $0) }
        }.get()
    }

    /// Every dead letter held, oldest first. Reads the file on the calling thread.
    package func list() throws(SpoolError) -> [DeadLetter] {
        try state.withLock { state throws(SpoolError) -> [DeadLetter] in
            var letters: [DeadLetter] = []
            for (id, location) in state.live.sorted {
                if let letter = try Self.read(state.file, location, id: id, configuration: configuration) { letters.append(letter) }
            }
            return letters
        }
    }

    /// Every dead letter held, oldest first (the file is read on the log's thread).
    package func list() async throws(SpoolError) -> [DeadLetter] {
        try await withCheckedContinuation { (c: CheckedContinuation<Result<[DeadLetter], SpoolError>, Never>) in
            run({ c.resume(returning: $0) }) { () throws(SpoolError) in try self.list() }
        }.get()
    }

    /// Appends the dead letter `id` to the live log again (a new sequence number, the
    /// same payload, expiry, flags and attempt count), then removes it from the store.
    /// A crash between the two steps leaves it in both (requeued twice if requeued again),
    /// never in neither. Blocks the calling thread; never call it from a task.
    package func requeue(_ id: UInt64) throws(SpoolError) -> UInt64 {
        guard let log = owner else { throw SpoolError.closedError }
        let letter = try letter(id)
        let sequence = try log.appendAndWait(SpoolEntry(payload: letter.record.payload, expiresAt: letter.record.expiresAt, flags: letter.record.flags, attempt: letter.record.attempt, headers: letter.record.headers))
        try remove(id)
        return sequence
    }

    /// Requeues the dead letter `id` and returns its new sequence number.
    package func requeue(_ id: UInt64) async throws(SpoolError) -> UInt64 {
        guard let log = owner else { throw SpoolError.closedError }
        let letter = try await withCheckedContinuation { (c: CheckedContinuation<Result<DeadLetter, SpoolError>, Never>) in
            run({ c.resume(returning: $0) }) { () throws(SpoolError) in try self.letter(id) }
        }.get()
        let sequence = try await log.append(SpoolEntry(payload: letter.record.payload, expiresAt: letter.record.expiresAt, flags: letter.record.flags, attempt: letter.record.attempt, headers: letter.record.headers))
        try await withCheckedContinuation { (c: CheckedContinuation<Result<Void, SpoolError>, Never>) in
            run({ c.resume(returning: $0) }) { () throws(SpoolError) in try self.remove(id) }
        }.get()
        return sequence
    }

    /// Deletes the dead letter `id` (durably). Blocks the calling thread.
    package func remove(_ id: UInt64) throws(SpoolError) {
        try state.withLock { state throws(SpoolError) in
            guard state.live[id] != nil else {
                throw SpoolError(code: .notFound, message: "no dead letter \(id) for peer \(peer)")
            }
            var writer = ByteWriter(capacity: RecordFormat.headerSize)
            RecordFormat.encode(into: &writer, type: .deadLetterRemoval, sequenceNumber: id, enqueuedAt: wallClockNanoseconds(), expiresAt: nil, attempt: 0, flags: 0, body: [])
            try state.file.append(writer.bytes, sync: true)
            state.live[id] = nil
        }
    }

    private func letter(_ id: UInt64) throws(SpoolError) -> DeadLetter {
        try state.withLock { state throws(SpoolError) -> DeadLetter in
            guard let location = state.live[id], let letter = try Self.read(state.file, location, id: id, configuration: configuration) else {
                throw SpoolError(code: .notFound, message: "no dead letter \(id) for peer \(peer)")
            }
            return letter
        }
    }

    private static func read(_ file: RecordFile, _ location: LetterLocation, id: UInt64, configuration: SpoolConfiguration) throws(SpoolError) -> DeadLetter? {
        let bytes = try file.read(at: location.offset, count: location.length)
        return bytes.withUnsafeBytes { raw -> DeadLetter? in
            guard case .record(let header) = RecordFormat.decode(raw, at: 0, maxLength: Int.max), header.sequenceNumber == id else {
                configuration.logger.error("spool: a dead letter failed verification on read; skipped", metadata: ["file": "\(file.path)", "offset": "\(location.offset)"])
                return nil
            }
            return DeadLetter.decode(header: header, body: RecordFormat.body(raw, at: 0, length: header.length))
        }
    }

    /// Runs `work` as a job on the log's thread, or fails `completion` if the log is gone.
    private func onLogThread<T: Sendable>(orFail completion: @escaping @Sendable (Result<T, SpoolError>) -> Void,
                                          _ work: @escaping @Sendable () -> Void) {
        guard let log = owner, log.enqueueJob(work) else {
            completion(.failure(.closedError))
            return
        }
    }

    private func run<T: Sendable>(_ completion: @escaping @Sendable (Result<T, SpoolError>) -> Void, _ work: @escaping @Sendable () throws(SpoolError) -> T) {
        guard let log = owner, log.enqueueJob({
            do throws(SpoolError) { completion(.success(try work())) } catch { completion(.failure(error)) }
        }) else {
            completion(.failure(.closedError))
            return
        }
    }
}
