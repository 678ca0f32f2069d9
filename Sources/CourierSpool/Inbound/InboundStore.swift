import CourierSystem
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
/// To honour SPEC §2 guarantee 4, a receiver reserves (``reserveForHandOut(sender:streamID:upTo:completion:)``)
/// before handing a message out, and marks it processed (``markProcessed(sender:streamID:sequenceNumbers:completion:)``)
/// before acknowledging it to the sender.
///
/// Every snapshot carries the kernel's boot id ("BootID"). A snapshot of the current boot
/// is exact whatever happened to the process since (the page cache outlives it); one of an
/// earlier boot may have lost later unsynced writes, so at open its reservation is raised to
/// its reservation ceiling, which group commit syncs before anything above it is handed out.
package final class InboundStore: Sendable {
    struct State {
        var streams: [InboundStreamKey: InboundStreamState]
        var dirty: Set<InboundStreamKey> = []
        var waiters: [@Sendable (Result<Void, SpoolError>) -> Void] = []
        /// Per stream, the highest reservation ceiling a synced snapshot holds (group commit).
        var durableCeilings: [InboundStreamKey: UInt64] = [:]
        /// Whether something was written since the last sync (interval policy).
        var unsynced = false
        /// A compaction renamed the journal but the directory sync failed: no sync counts
        /// until it succeeds.
        var directoryUnsynced = false
        /// A sync of the journal failed under group commit: the kernel may have dropped
        /// written pages, so unsynced reservations are no longer trusted; every hand-out
        /// waits for a sync from then on.
        var syncFailed = false
        /// The last sync failed (a run of failures is going on).
        var syncFailing = false
        var closed = false
        var sleeping = false
        var syncs = 0
        /// Per stream, the verdicts other than processed kept until the sender has heard
        /// them (at most ``InboundStore/maxVerdictsPerStream``), and those not yet written.
        var verdicts: [InboundStreamKey: [UInt64: InboundVerdict]] = [:]
        var unwrittenVerdicts: [(InboundStreamKey, UInt64)] = []

        /// Applies `body` to a stream's state (created if new), keeps its ceiling at or above
        /// its reservation (a lowered ceiling lowers the synced one it may count on) and
        /// stamps its activity. Returns `body`'s error.
        mutating func update(_ key: InboundStreamKey, _ body: (inout InboundStreamState) -> SpoolError?) -> SpoolError? {
            var stream = streams[key] ?? InboundStreamState(sender: key.sender, streamID: key.streamID)
            let error = body(&stream)
            stream.reservationCeiling = max(stream.reservationCeiling, stream.reservedUpTo)
            if let durable = durableCeilings[key], durable > stream.reservationCeiling {
                durableCeilings[key] = stream.reservationCeiling
            }
            stream.lastActivity = wallClockNanoseconds()
            streams[key] = stream
            return error
        }
    }

    /// The journal file. Appends happen with the state's lock held, so that snapshots reach
    /// the file in the order their changes were made. Only the store's thread syncs it
    /// (without the lock) and compacts it: it writes the new file without the lock, then
    /// swaps `file` with it held (`@unchecked Sendable` for that discipline).
    final class Journal: @unchecked Sendable {
        var file: RecordFile
        var lastSyncAt = monotonicNanoseconds()
        var compactedSize: Int64 = 0
        init(file: RecordFile) { self.file = file }
    }

    let directory: FilePath
    let configuration: SpoolConfiguration
    let state: Mutex<State>
    let journal: Journal
    let signal: WakeEvent
    private let thread: Mutex<OSThread?> = Mutex(nil)
    /// `fdatasync` calls on the journal, as the `courier_spool_inbound_syncs_total` counter.
    let syncMetric = Counter(label: "courier_spool_inbound_syncs_total")
    /// Stamped on every snapshot written (nil: this system has none).
    let bootID: [UInt8]?
    /// Whether a hand-out must wait for a synced reservation ceiling (group commit).
    let ceilingsRequired: Bool
    /// Whether ``reserveForHandOut(sender:streamID:upTo:completion:)`` may write from the
    /// caller's thread: always, except under group commit without a boot id, where
    /// nothing could tell an exact unsynced reservation from a lost one after a reboot.
    let handsOutBeforeSync: Bool
    /// ``InboundConfiguration/reservationAhead``, never negative.
    let reservationAhead: UInt64
    /// What the application took, per stream (nil: the file could not be opened; every
    /// stream then relies on its reservation alone).
    package let takenMarks: TakenMarks?

    var journalPath: FilePath { directory.appending("inbound.journal") }

    init(directory: FilePath, configuration: SpoolConfiguration) throws(SpoolError) {
        self.directory = directory
        self.configuration = configuration
        do { signal = try WakeEvent() } catch { throw .wakeEvent(error, doing: "opening the inbound store") }
        try FileOps.makeDirectory(directory)
        let opened = try RecordFile.open(
            path: directory.appending("inbound.journal"), kind: .inbound, peer: nil,
            maxRecordSize: 1 << 26
        )
        bootID = configuration.testHooks.bootID ?? BootID.current
        ceilingsRequired = configuration.durability.syncsEachBatch
        reservationAhead = UInt64(max(0, configuration.inbound.reservationAhead))
        handsOutBeforeSync = !ceilingsRequired || (bootID != nil && reservationAhead > 0)
        var streams: [InboundStreamKey: InboundStreamState] = [:]
        var writtenBy: [InboundStreamKey: [UInt8]?] = [:]
        var verdicts: [InboundStreamKey: [UInt64: InboundVerdict]] = [:]
        var corrupt = 0
        for entry in opened.entries {
            if entry.header.type == RecordFormat.RecordType.inboundVerdict.rawValue {
                guard let (key, sequence, verdict) = InboundVerdict.decode(body: entry.body) else {
                    corrupt += 1
                    continue
                }
                verdicts[key, default: [:]][sequence] = verdict
                continue
            }
            guard entry.header.type == RecordFormat.RecordType.inboundState.rawValue,
                  let (stream, writer) = InboundStreamState.decodeSnapshot(body: entry.body, lastActivity: entry.header.enqueuedAt) else {
                corrupt += 1
                continue
            }
            let key = InboundStreamKey(sender: stream.sender, streamID: stream.streamID)
            streams[key] = stream
            writtenBy[key] = writer
        }
        // A stream's last snapshot from an earlier boot may be older than what was handed
        // out (unsynced writes lost with the machine): everything up to its synced ceiling
        // may have been handed out.
        let thisBoot = bootID
        for (key, writer) in writtenBy where writer == nil || writer != thisBoot {
            guard var stream = streams[key] else { continue }
            stream.reservedUpTo = max(stream.reservedUpTo, stream.reservationCeiling)
            streams[key] = stream
        }
        for event in opened.events {
            if case .corruptionFound = event {
                Counter(label: "courier_spool_inbound_corruptions_total").increment()
            }
            configuration.logger.error("spool: inbound journal repaired on open", metadata: ["event": "\(event)"])
            configuration.onEvent?(event)
        }
        if corrupt > 0 {
            configuration.logger.error("spool: inbound journal records with a valid checksum but an impossible layout were ignored", metadata: ["count": "\(corrupt)"])
        }
        var initial = State(streams: Self.pruned(streams, retain: configuration.inbound.retainOldStreamsFor,
                                                 perSender: configuration.inbound.maxStreamsPerSender))
        initial.verdicts = verdicts.filter { initial.streams[$0.key] != nil }
        do {
            takenMarks = try TakenMarks(directory: directory, bootID: bootID, streams: Set(initial.streams.keys))
        } catch {
            configuration.logger.error("spool: the taken marks cannot be kept; after a crash, messages queued for the application but never taken come back flagged redelivered", metadata: ["error": "\(error)"])
            takenMarks = nil
        }
        state = Mutex(initial)
        journal = Journal(file: opened.file)
        // A version-1 journal is rewritten as version 2 before anything is appended to it.
        let start = try journal.file.read(at: 0, count: FileHeader.size)
        if case .success(let header) = start.withUnsafeBytes({ FileHeader.decode($0, kind: .inbound) }), header.version < FileHeader.Kind.inbound.version {
            try compactJournal()
        }
        let started: OSThread
        do { started = try OSThread.start(name: "spool-inbound") { [self] in self.runWriter() } } catch {
            throw .threadStart(error, doing: "opening the inbound store")
        }
        thread.withLock { $0 = started }
    }

    // MARK: Reading (no I/O)

    /// The state of one stream, or `nil` if nothing was ever recorded for it.
    package func state(sender: String, streamID: UInt64) -> InboundStreamState? {
        state.withLock { $0.streams[InboundStreamKey(sender: sender, streamID: streamID)] }
    }

    /// ``state(sender:streamID:)`` and ``verdicts(sender:streamID:)`` under one acquisition
    /// of the lock (the receiver's I/O thread, for each new stream).
    package func stateAndVerdicts(sender: String, streamID: UInt64) -> (InboundStreamState?, [UInt64: InboundVerdict]) {
        let key = InboundStreamKey(sender: sender, streamID: streamID)
        return state.withLock { ($0.streams[key], $0.verdicts[key] ?? [:]) }
    }

    /// The verdicts other than processed kept for one stream (until its sender has heard
    /// them), by sequence number.
    package func verdicts(sender: String, streamID: UInt64) -> [UInt64: InboundVerdict] {
        state.withLock { $0.verdicts[InboundStreamKey(sender: sender, streamID: streamID)] ?? [:] }
    }

    /// The sender has heard every verdict up to `sequenceNumber` (its HELLO's first
    /// unacknowledged number passed them): they leave memory at once and the journal at its
    /// next compaction.
    package func forgetVerdicts(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64) {
        let key = InboundStreamKey(sender: sender, streamID: streamID)
        state.withLock { state in
            guard let kept = state.verdicts[key], kept.keys.contains(where: { $0 <= sequenceNumber }) else { return }
            let left = kept.filter { $0.key > sequenceNumber }
            state.verdicts[key] = left.isEmpty ? nil : left
        }
    }

    /// How many verdicts a stream keeps; beyond it the oldest processed ones are forgotten,
    /// down to half.
    package static let maxVerdictsPerStream = 100_000

    /// The streams recorded for `sender` (current and older incarnations), newest activity first.
    package func streams(of sender: String) -> [InboundStreamState] {
        state.withLock { $0.streams.values.filter { $0.sender == sender } }.sorted { $0.lastActivity > $1.lastActivity }
    }

    /// Forgets a stream (the receiver retired it: its sender has moved on to newer streams).
    /// It leaves memory at once and the journal at the next compaction; a restart before
    /// that applies ``InboundConfiguration/maxStreamsPerSender`` again at open.
    package func retire(sender: String, streamID: UInt64) {
        let key = InboundStreamKey(sender: sender, streamID: streamID)
        state.withLock { state in
            state.streams[key] = nil
            state.dirty.remove(key)
            state.durableCeilings[key] = nil
            state.verdicts[key] = nil
        }
    }

    /// Every stream recorded.
    package var allStreams: [InboundStreamState] {
        state.withLock { Array($0.streams.values) }.sorted { ($0.sender, $0.streamID) < ($1.sender, $1.streamID) }
    }

    /// The highest reservation ceiling of this stream a synced snapshot holds, if any.
    func durableCeiling(sender: String, streamID: UInt64) -> UInt64? {
        state.withLock { $0.durableCeilings[InboundStreamKey(sender: sender, streamID: streamID)] }
    }

    /// `fdatasync` calls on the journal since open.
    package var syncCount: Int { state.withLock { $0.syncs } }

    // MARK: Changing

    /// Records that every sequence number up to `sequenceNumber` may have been handed to
    /// the application. `completion` runs on the store's thread once durable (synced under
    /// group commit). A receiver's I/O thread uses ``reserveForHandOut(sender:streamID:upTo:completion:)``,
    /// which seldom waits for a sync.
    package func reserve(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64, completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        change(sender: sender, streamID: streamID, completion: completion) { stream in
            stream.reservedUpTo = max(stream.reservedUpTo, sequenceNumber)
            return nil
        }
    }

    /// Records that the application processed `sequenceNumbers` (in any order).
    /// `completion` runs on the store's thread once durable. Fails with
    /// ``SpoolError/Code/tooManyOutOfOrder`` if the out-of-order set would exceed its
    /// bound (the numbers before the one that did not fit are kept).
    /// `verdicts`: those of `sequenceNumbers` that were not processed (rejected, expired),
    /// made durable with the marks and kept until ``forgetVerdicts(sender:streamID:upTo:)``.
    package func markProcessed(sender: String, streamID: UInt64, sequenceNumbers: [UInt64], verdicts: [UInt64: InboundVerdict] = [:],
                               completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        let limit = configuration.inbound.maxProcessedAboveMark
        change(sender: sender, streamID: streamID, verdicts: verdicts, completion: completion) { stream in
            for sequence in sequenceNumbers where !stream.markProcessed(sequence, limit: limit) {
                return SpoolError(code: .tooManyOutOfOrder, message: "stream \(hex(streamID)) of \(sender) already holds \(limit) processed numbers above \(stream.processedUpTo); acknowledge \(stream.processedUpTo + 1) first or raise maxProcessedAboveMark")
            }
            return nil
        }
    }

    /// Records that every number up to `processedUpTo` is finished for this stream, creating
    /// the stream's record if there is none (a receiver learns a new stream's starting point
    /// from the sender's hello). Never moves the mark down. `completion` runs once durable.
    package func begin(sender: String, streamID: UInt64, processedUpTo mark: UInt64, completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
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

    /// Lowers the handed-out reservation, and the reservation ceiling with it, to
    /// `sequenceNumber` (never below the processed mark): numbers above it were not handed
    /// out after all, as at a graceful shutdown that withdrew messages the application never
    /// took. `completion` runs once durable.
    package func lowerReservation(sender: String, streamID: UInt64, to sequenceNumber: UInt64, completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) {
        change(sender: sender, streamID: streamID, completion: completion) { stream in
            stream.reservedUpTo = max(stream.processedUpTo, min(stream.reservedUpTo, sequenceNumber))
            stream.reservationCeiling = stream.reservedUpTo
            return nil
        }
    }

    /// Reserves up to `sequenceNumber`; returns once durable.
    package func reserve(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64) async throws(SpoolError) {
        try await withCheckedContinuation { (c: CheckedContinuation<Result<Void, SpoolError>, Never>) in
            reserve(sender: sender, streamID: streamID, upTo: sequenceNumber) { c.resume(returning: $0) }
        }.get()
    }

    /// Marks sequence numbers processed; returns once durable.
    package func markProcessed(sender: String, streamID: UInt64, sequenceNumbers: [UInt64],
                               verdicts: [UInt64: InboundVerdict] = [:]) async throws(SpoolError) {
        try await withCheckedContinuation { (c: CheckedContinuation<Result<Void, SpoolError>, Never>) in
            markProcessed(sender: sender, streamID: streamID, sequenceNumbers: sequenceNumbers, verdicts: verdicts) { c.resume(returning: $0) }
        }.get()
    }

    /// Reserves, blocking the calling thread until durable. Never from a task.
    package func reserveAndWait(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64) throws(SpoolError) {
        let box = try BlockingResult<Void>()
        reserve(sender: sender, streamID: streamID, upTo: sequenceNumber) { box.set($0) }
        try box.wait()
    }

    /// Marks processed, blocking the calling thread until durable. Never from a task.
    package func markProcessedAndWait(sender: String, streamID: UInt64, sequenceNumbers: [UInt64]) throws(SpoolError) {
        let box = try BlockingResult<Void>()
        markProcessed(sender: sender, streamID: streamID, sequenceNumbers: sequenceNumbers) { box.set($0) }
        try box.wait()
    }

    private func change(
        sender: String, streamID: UInt64, verdicts: [UInt64: InboundVerdict] = [:],
        completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void,
        _ body: (inout InboundStreamState) -> SpoolError?
    ) {
        guard isValid(sender, else: completion) else { return }
        let key = InboundStreamKey(sender: sender, streamID: streamID)
        let outcome = state.withLock { state -> (error: SpoolError?, wake: Bool) in
            if state.closed { return (.closedError, false) }
            let error = state.update(key, body)
            if error == nil, !verdicts.isEmpty {
                // In place: a copy of the stream's verdicts per call cost O(kept) each time.
                for (sequence, verdict) in verdicts {
                    state.verdicts[key, default: [:]][sequence] = verdict
                    state.unwrittenVerdicts.append((key, sequence))
                }
                let count = state.verdicts[key]?.count ?? 0
                if count > Self.maxVerdictsPerStream, let processed = state.streams[key]?.processedUpTo,
                   let oldest = state.verdicts[key]?.keys.filter({ $0 <= processed }).sorted().prefix(count - Self.maxVerdictsPerStream / 2) {
                    for sequence in oldest { state.verdicts[key]?[sequence] = nil }
                }
            }
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
        if let error = outcome.error { completion(.failure(error)) } else if outcome.wake { signal.wake() }
    }

    /// Whether `sender` can name a stream; if not, `completion` gets the error.
    func isValid(_ sender: String, else completion: @Sendable (Result<Void, SpoolError>) -> Void) -> Bool {
        do throws(SpoolError) { try PeerDirectoryName.validate(sender) } catch {
            completion(.failure(error))
            return false
        }
        return true
    }

    // MARK: Closing

    /// Writes what is pending and stops the store's thread. Blocks; idempotent.
    package func close() {
        let wake = state.withLock { state -> Bool in
            // Nothing is handed out any more and each reservation is exact: lower the
            // ceilings to them, so that a reboot after this stop flags nothing more.
            if !state.closed {
                for (key, stream) in state.streams where stream.reservationCeiling > stream.reservedUpTo {
                    state.streams[key]?.reservationCeiling = stream.reservedUpTo
                    state.durableCeilings[key] = min(state.durableCeilings[key] ?? 0, stream.reservedUpTo)
                    state.dirty.insert(key)
                }
            }
            state.closed = true
            defer { state.sleeping = false }
            return state.sleeping
        }
        if wake { signal.wake() }
        let running = thread.withLock { thread -> OSThread? in
            defer { thread = nil }
            return thread
        }
        running?.join()
    }
}
