import Logging
import Metrics
import Synchronization
import SystemPackage

/// The receiver's durable deduplication state, for every (sender, stream), in one
/// journal (`inbound/inbound.journal`, see docs/SPOOL-FORMAT.md).
///
/// Changes take effect in memory at once (``state(sender:streamID:)`` sees them) and are
/// made durable by the store's own thread under the configured durability policy, many
/// changes to many streams sharing one `fdatasync`; each change's completion runs once it
/// is durable. The journal holds the latest snapshot of each stream and is compacted when
/// it grows past ``InboundConfiguration/compactionThreshold``. Old stream incarnations of
/// a sender are dropped at compaction once idle for ``InboundConfiguration/retainOldStreamsFor``.
///
/// To honour SPEC §2 guarantee 4, a receiver reserves (``reserve(sender:streamID:upTo:completion:)``)
/// before handing a message out, and marks it processed (``markProcessed(sender:streamID:sequenceNumbers:completion:)``)
/// before acknowledging it to the sender.
public final class InboundStore: Sendable {
    private struct State {
        var streams: [InboundStreamKey: InboundStreamState]
        var dirty: Set<InboundStreamKey> = []
        var waiters: [@Sendable (Result<Void, SpoolError>) -> Void] = []
        var closed = false
        var sleeping = false
        var syncs = 0
    }

    /// File work owned by the store's thread only (`@unchecked Sendable`: handed to that one
    /// thread, plus the initializer before it starts).
    private final class Journal: @unchecked Sendable {
        var file: RecordFile
        var unsynced = false
        var lastSyncAt = monotonicNanoseconds()
        var compactedSize: Int64 = 0
        init(file: RecordFile) { self.file = file }
    }

    let directory: FilePath
    private let configuration: SpoolConfiguration
    private let state: Mutex<State>
    private let journal: Journal
    private let signal = WakeSignal()
    private let thread: Mutex<SpoolThread?> = Mutex(nil)
    /// `fdatasync` calls on the journal, as the `courier_spool_inbound_syncs_total` counter.
    private let syncMetric = Counter(label: "courier_spool_inbound_syncs_total")

    var journalPath: FilePath { directory.appending("inbound.journal") }

    init(directory: FilePath, configuration: SpoolConfiguration) throws(SpoolError) {
        self.directory = directory
        self.configuration = configuration
        try FileOps.makeDirectory(directory)
        let opened = try RecordFile.open(
            path: directory.appending("inbound.journal"), kind: .inbound, peer: nil,
            maxRecordSize: 1 << 26
        )
        var streams: [InboundStreamKey: InboundStreamState] = [:]
        var corrupt = 0
        for entry in opened.entries {
            guard entry.header.type == RecordFormat.RecordType.inboundState.rawValue,
                  let stream = InboundStreamState.decode(body: entry.body, lastActivity: entry.header.enqueuedAt) else {
                corrupt += 1
                continue
            }
            streams[InboundStreamKey(sender: stream.sender, streamID: stream.streamID)] = stream
        }
        for event in opened.events {
            if case .corruptionFound = event {
                Counter(label: "courier_spool_corruptions_total", dimensions: [("store", "inbound")]).increment()
            }
            configuration.logger.error("spool: inbound journal repaired on open", metadata: ["event": "\(event)"])
            configuration.onEvent?(event)
        }
        if corrupt > 0 {
            configuration.logger.error("spool: inbound journal records with a valid checksum but an impossible layout were ignored", metadata: ["count": "\(corrupt)"])
        }
        state = Mutex(State(streams: Self.pruned(streams, retain: configuration.inbound.retainOldStreamsFor)))
        journal = Journal(file: opened.file)
        let started = SpoolThread(name: "spool-inbound") { [self] in self.runWriter() }
        thread.withLock { $0 = started }
    }

    // MARK: Reading (no I/O)

    /// The state of one stream, or `nil` if nothing was ever recorded for it.
    public func state(sender: String, streamID: UInt64) -> InboundStreamState? {
        state.withLock { $0.streams[InboundStreamKey(sender: sender, streamID: streamID)] }
    }

    /// The streams recorded for `sender` (current and older incarnations), newest activity first.
    public func streams(of sender: String) -> [InboundStreamState] {
        state.withLock { $0.streams.values.filter { $0.sender == sender } }.sorted { $0.lastActivity > $1.lastActivity }
    }

    /// Every stream recorded.
    public var allStreams: [InboundStreamState] {
        state.withLock { Array($0.streams.values) }.sorted { ($0.sender, $0.streamID) < ($1.sender, $1.streamID) }
    }

    /// `fdatasync` calls on the journal since open.
    public var syncCount: Int { state.withLock { $0.syncs } }

    // MARK: Changing

    /// Records that every sequence number up to `sequenceNumber` may have been handed to
    /// the application. `completion` runs on the store's thread once durable.
    public func reserve(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64, completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        change(sender: sender, streamID: streamID, completion: completion) { stream in
            stream.reservedUpTo = max(stream.reservedUpTo, sequenceNumber)
            return nil
        }
    }

    /// Records that the application processed `sequenceNumbers` (in any order).
    /// `completion` runs on the store's thread once durable. Fails with
    /// ``SpoolError/Code/tooManyOutOfOrder`` if the out-of-order set would exceed its
    /// bound (the numbers before the one that did not fit are kept).
    public func markProcessed(sender: String, streamID: UInt64, sequenceNumbers: [UInt64], completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        let limit = configuration.inbound.maxProcessedAboveMark
        change(sender: sender, streamID: streamID, completion: completion) { stream in
            for sequence in sequenceNumbers where !stream.markProcessed(sequence, limit: limit) {
                return SpoolError(code: .tooManyOutOfOrder, message: "stream \(hex(streamID)) of \(sender) already holds \(limit) processed numbers above \(stream.processedUpTo); acknowledge \(stream.processedUpTo + 1) first or raise maxProcessedAboveMark")
            }
            return nil
        }
    }

    /// Records that every number up to `processedUpTo` is finished for this stream, creating
    /// the stream's record if there is none (a receiver learns a new stream's starting point
    /// from the sender's hello). Never moves the mark down. `completion` runs once durable.
    public func begin(sender: String, streamID: UInt64, processedUpTo mark: UInt64, completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        change(sender: sender, streamID: streamID, completion: completion) { stream in
            if mark > stream.processedUpTo {
                stream.processedUpTo = mark
                stream.processedAbove = stream.processedAbove.filter { $0 > mark }
                while stream.processedAbove.remove(stream.processedUpTo + 1) != nil { stream.processedUpTo += 1 }
            }
            stream.reservedUpTo = max(stream.reservedUpTo, stream.processedUpTo)
            return nil
        }
    }

    /// Lowers the handed-out reservation to `sequenceNumber` (never below the processed mark):
    /// numbers above it were not handed out after all, as at a graceful shutdown that
    /// withdrew messages the application never took. `completion` runs once durable.
    public func lowerReservation(sender: String, streamID: UInt64, to sequenceNumber: UInt64, completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        change(sender: sender, streamID: streamID, completion: completion) { stream in
            stream.reservedUpTo = max(stream.processedUpTo, min(stream.reservedUpTo, sequenceNumber))
            return nil
        }
    }

    /// Reserves up to `sequenceNumber`; returns once durable.
    public func reserve(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64) async throws(SpoolError) {
        try await withCheckedContinuation { (c: CheckedContinuation<Result<Void, SpoolError>, Never>) in
            reserve(sender: sender, streamID: streamID, upTo: sequenceNumber) { c.resume(returning: $0) }
        }.get()
    }

    /// Marks sequence numbers processed; returns once durable.
    public func markProcessed(sender: String, streamID: UInt64, sequenceNumbers: [UInt64]) async throws(SpoolError) {
        try await withCheckedContinuation { (c: CheckedContinuation<Result<Void, SpoolError>, Never>) in
            markProcessed(sender: sender, streamID: streamID, sequenceNumbers: sequenceNumbers) { c.resume(returning: $0) }
        }.get()
    }

    /// Reserves, blocking the calling thread until durable. Never from a task.
    public func reserveAndWait(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64) throws(SpoolError) {
        let box = BlockingResult<Void>()
        reserve(sender: sender, streamID: streamID, upTo: sequenceNumber) { box.set($0) }
        try box.wait()
    }

    /// Marks processed, blocking the calling thread until durable. Never from a task.
    public func markProcessedAndWait(sender: String, streamID: UInt64, sequenceNumbers: [UInt64]) throws(SpoolError) {
        let box = BlockingResult<Void>()
        markProcessed(sender: sender, streamID: streamID, sequenceNumbers: sequenceNumbers) { box.set($0) }
        try box.wait()
    }

    private func change(
        sender: String, streamID: UInt64,
        completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void,
        _ body: (inout InboundStreamState) -> SpoolError?
    ) {
        do throws(SpoolError) { try PeerDirectoryName.validate(sender) } catch {
            completion(.failure(error))
            return
        }
        let key = InboundStreamKey(sender: sender, streamID: streamID)
        let outcome = state.withLock { state -> (error: SpoolError?, wake: Bool) in
            if state.closed { return (.closedError, false) }
            var stream = state.streams[key] ?? InboundStreamState(sender: sender, streamID: streamID)
            let error = body(&stream)
            stream.lastActivity = wallClockNanoseconds()
            state.streams[key] = stream
            state.dirty.insert(key)
            if let error {
                state.waiters.append { @Sendable _ in completion(.failure(error)) }
            } else {
                state.waiters.append(completion)
            }
            let wake = state.sleeping
            state.sleeping = false
            return (nil, wake)
        }
        if let error = outcome.error { completion(.failure(error)) } else if outcome.wake { signal.signal() }
    }

    // MARK: Closing

    /// Writes what is pending and stops the store's thread. Blocks; idempotent.
    public func close() {
        let wake = state.withLock { state -> Bool in
            state.closed = true
            defer { state.sleeping = false }
            return state.sleeping
        }
        if wake { signal.signal() }
        let running = thread.withLock { thread -> SpoolThread? in
            defer { thread = nil }
            return thread
        }
        running?.join()
    }

    // MARK: The store's thread

    private func runWriter() {
        let policy = configuration.durability
        while true {
            var intervalDue = false
            var sleep: Int64?
            if case .interval(let period) = policy.kind, journal.unsynced {
                let remaining = journal.lastSyncAt + period.nanoseconds - monotonicNanoseconds()
                if remaining <= 0 { intervalDue = true } else { sleep = remaining }
            }
            let taken = state.withLock { state -> (snapshots: [InboundStreamState], waiters: [@Sendable (Result<Void, SpoolError>) -> Void], exit: Bool) in
                let snapshots = state.dirty.compactMap { state.streams[$0] }
                state.dirty.removeAll(keepingCapacity: true)
                var waiters: [@Sendable (Result<Void, SpoolError>) -> Void] = []
                swap(&waiters, &state.waiters)
                let exit = state.closed && snapshots.isEmpty && waiters.isEmpty
                if snapshots.isEmpty && waiters.isEmpty && !exit && !intervalDue { state.sleeping = true }
                return (snapshots, waiters, exit)
            }
            if !taken.snapshots.isEmpty || !taken.waiters.isEmpty {
                let result = persist(taken.snapshots)
                for waiter in taken.waiters { waiter(result) }
            }
            if intervalDue { syncJournal() }
            if taken.exit {
                if journal.unsynced { syncJournal() }
                return
            }
            if taken.snapshots.isEmpty && taken.waiters.isEmpty && !intervalDue {
                signal.wait(timeoutNanoseconds: sleep)
            }
        }
    }

    private func persist(_ snapshots: [InboundStreamState]) -> Result<Void, SpoolError> {
        var writer = ByteWriter(capacity: 128 * max(1, snapshots.count))
        for stream in snapshots {
            RecordFormat.encode(into: &writer, type: .inboundState, sequenceNumber: 0, enqueuedAt: stream.lastActivity, expiresAt: nil, attempt: 0, flags: 0, body: stream.encodedBody())
        }
        do throws(SpoolError) {
            if !writer.bytes.isEmpty {
                try journal.file.append(writer.bytes, sync: configuration.durability.syncsEachBatch)
                if configuration.durability.syncsEachBatch {
                    state.withLock { $0.syncs += 1 }
                    syncMetric.increment()
                } else {
                    journal.unsynced = true
                }
            }
            if journal.file.end > Int64(configuration.inbound.compactionThreshold), journal.file.end > 2 * journal.compactedSize {
                try compact()
            }
            return .success(())
        } catch {
            // Keep the changes dirty so the next write retries them.
            state.withLock { state in
                for stream in snapshots { state.dirty.insert(InboundStreamKey(sender: stream.sender, streamID: stream.streamID)) }
            }
            configuration.logger.error("spool: writing inbound state failed", metadata: ["file": "\(journal.file.path)", "error": "\(error)"])
            return .failure(error)
        }
    }

    private func syncJournal() {
        do throws(SpoolError) {
            try journal.file.sync()
            state.withLock { $0.syncs += 1 }
            syncMetric.increment()
        } catch {
            configuration.logger.error("spool: syncing inbound state failed", metadata: ["error": "\(error)"])
        }
        journal.unsynced = false
        journal.lastSyncAt = monotonicNanoseconds()
    }

    /// Drops streams idle for longer than `retain` that are not their sender's most recently
    /// active stream.
    private static func pruned(_ streams: [InboundStreamKey: InboundStreamState], retain: Duration) -> [InboundStreamKey: InboundStreamState] {
        let now = wallClockNanoseconds()
        var newest: [String: Int64] = [:]
        for stream in streams.values { newest[stream.sender] = max(newest[stream.sender] ?? .min, stream.lastActivity) }
        return streams.filter { _, stream in
            stream.lastActivity == newest[stream.sender] || now - stream.lastActivity < retain.nanoseconds
        }
    }

    /// Rewrites the journal with one snapshot per live stream, dropping idle old incarnations.
    private func compact() throws(SpoolError) {
        let now = wallClockNanoseconds()
        let live = state.withLock { state -> [InboundStreamState] in
            state.streams = Self.pruned(state.streams, retain: configuration.inbound.retainOldStreamsFor)
            return Array(state.streams.values)
        }
        var writer = ByteWriter(capacity: FileHeader.size + live.count * 64)
        writer.append(FileHeader(kind: .inbound, streamID: 0, baseSequence: 0, createdAt: now).encoded())
        for stream in live {
            RecordFormat.encode(into: &writer, type: .inboundState, sequenceNumber: 0, enqueuedAt: stream.lastActivity, expiresAt: nil, attempt: 0, flags: 0, body: stream.encodedBody())
        }
        try FileOps.writeAtomically(writer.bytes, to: journalPath)
        let reopened = try RecordFile.open(path: journalPath, kind: .inbound, peer: nil, maxRecordSize: 1 << 26)
        journal.file = reopened.file
        journal.compactedSize = reopened.file.end
        journal.unsynced = false
        configuration.logger.debug("spool: compacted the inbound journal", metadata: ["streams": "\(live.count)", "bytes": "\(writer.bytes.count)"])
    }
}
