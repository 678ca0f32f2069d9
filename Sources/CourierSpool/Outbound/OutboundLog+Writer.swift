import CourierSystem
import Synchronization
import CoreMetrics
import Logging
import SystemPackage

/// State only the log's writer thread touches (and the initializer, before the thread
/// starts). `@unchecked Sendable` because it is handed to that one thread and never shared:
/// every access is from `OutboundLog.runWriter` and the functions it calls.
final class LogWriter: @unchecked Sendable {
    let metaFile: LogMetaFile
    /// A write or sync failed after bytes may have reached the file: truncate the active
    /// segment back to its last good end before the next append.
    var needsRepair = false
    /// Bytes written but not yet synced (interval policy).
    var unsynced = false
    var lastSyncAt = monotonicNanoseconds()
    var highestUnsynced: UInt64 = 0
    var lastAcknowledgementPersistAt: Int64 = 0
    /// Whether to check if the active segment is wholly acknowledged and worth giving back
    /// (at start, and after each acknowledgement written).
    var reclaimCheckDue = true
    /// Acknowledged segment files kept for the next rolls.
    var spares: SparePool
    /// The attempt counts' file (written, never synced).
    let attemptFile: AttemptFile

    init(metaFile: LogMetaFile, spares: SparePool, attemptFile: AttemptFile) {
        self.metaFile = metaFile
        self.spares = spares
        self.attemptFile = attemptFile
    }
}

extension OutboundLog {
    private struct Work {
        var requests: [AppendRequest] = []
        var rejected: [(AppendRequest, SpoolError)] = []
        var jobs: [@Sendable () -> Void] = []
        var flushWaiters: [@Sendable (Result<Void, SpoolError>) -> Void] = []
        var acknowledge: UInt64?
        var attempts: SentAttempts?
        var refreshOldest = false
        var acknowledgementWaiting = false
        var exit = false
        var isEmpty: Bool {
            requests.isEmpty && rejected.isEmpty && jobs.isEmpty && flushWaiters.isEmpty && acknowledge == nil && attempts == nil
                && !refreshOldest
        }
    }

    /// How long an acknowledgement may wait before its mark is written (marks are
    /// coalesced; a lost mark only means records are sent again).
    static var acknowledgementPersistPeriod: Int64 { 50_000_000 }

    func runWriter() {
        while true {
            let now = monotonicNanoseconds()
            let intervalDue = intervalSyncDue(now: now)
            let ackRemaining = writer.lastAcknowledgementPersistAt + Self.acknowledgementPersistPeriod - now
            let work = state.withLock { state -> Work in
                takeWork(&state, intervalDue: intervalDue, acknowledgementDue: ackRemaining <= 0)
            }
            for (request, error) in work.rejected { request.completion(.failure(error)) }
            for job in work.jobs { job() }
            // The dead letters those jobs wrote: one sync for all of them.
            if !work.jobs.isEmpty { deadLetters.completeWrittenLetters() }
            if !work.requests.isEmpty { write(work.requests) }
            if intervalDue.due { syncForInterval() }
            if !work.flushWaiters.isEmpty {
                let result = flushNow()
                for waiter in work.flushWaiters { waiter(result) }
                writer.reclaimCheckDue = true  // the flush may have written a new mark
            }
            if let target = work.acknowledge {
                persistAcknowledgement(target)
                writer.lastAcknowledgementPersistAt = monotonicNanoseconds()
                writer.reclaimCheckDue = true
            }
            if writer.reclaimCheckDue {
                // Also while closing: a node that stops once everything was delivered leaves
                // no more than the threshold behind.
                writer.reclaimCheckDue = false
                reclaimActiveSegment(force: false)
            }
            if let attempts = work.attempts { writeAttempts(attempts) }
            if work.refreshOldest { refreshOldestIfNeeded() }
            if let expiry = writer.spares.nextExpiry, expiry <= monotonicNanoseconds() {
                writer.spares.expire(now: monotonicNanoseconds(), releaser: FileReleaser.shared, logger: configuration.logger)
            }
            if work.exit {
                if writer.unsynced { syncForInterval() }
                return
            }
            if work.isEmpty && !intervalDue.due {
                var timeout = intervalDue.sleep
                if work.acknowledgementWaiting {
                    timeout = min(timeout ?? .max, max(ackRemaining, 1_000_000))
                }
                if let expiry = writer.spares.nextExpiry {
                    timeout = min(timeout ?? .max, max(expiry - monotonicNanoseconds(), 1_000_000))
                }
                signal.wait(timeoutNanoseconds: timeout)
            }
        }
    }

    private func intervalSyncDue(now: Int64) -> (due: Bool, sleep: Int64?) {
        guard case .interval(let period) = configuration.durability.kind, writer.unsynced else { return (false, nil) }
        let remaining = writer.lastSyncAt + period.nanoseconds - now
        return remaining <= 0 ? (true, nil) : (false, remaining)
    }

    private func takeWork(_ state: inout OutboundLogState, intervalDue: (due: Bool, sleep: Int64?), acknowledgementDue: Bool) -> Work {
        var work = Work()
        swap(&work.jobs, &state.jobs)
        swap(&work.flushWaiters, &state.flushWaiters)
        if state.acknowledgedUpTo > state.persistedAcknowledgedUpTo {
            let segmentFreed = state.segments.count > 1 && state.segments[0].lastSequence <= state.acknowledgedUpTo
            if acknowledgementDue || segmentFreed || state.closed {
                work.acknowledge = state.acknowledgedUpTo
            } else {
                work.acknowledgementWaiting = true
            }
        }
        if state.attemptsUnwritten {
            work.attempts = state.attempts
            state.attemptsUnwritten = false
        }
        work.refreshOldest = state.oldestNeedsRefresh
        var count = state.pendingCount
        var bytes = state.pendingBytes
        var taken = 0
        for request in state.queue {
            let fits = count + request.entries.count <= configuration.maxPendingMessages
                && bytes + request.bytes <= configuration.maxPendingBytes
            if fits {
                work.requests.append(request)
                count += request.entries.count
                bytes += request.bytes
            } else if request.entries.count > configuration.maxPendingMessages || request.bytes > configuration.maxPendingBytes {
                work.rejected.append((request, SpoolError(code: .recordTooLarge, message: "an append of \(request.entries.count) records, \(request.bytes) bytes can never fit the spool limits (maxPendingMessages \(configuration.maxPendingMessages), maxPendingBytes \(configuration.maxPendingBytes))")))
            } else if configuration.whenFull == .fail {
                work.rejected.append((request, SpoolError(code: .spoolFull, message: "the spool for peer \(peer) is full (\(state.pendingCount) records, \(state.pendingBytes) bytes pending; limits \(configuration.maxPendingMessages) records, \(configuration.maxPendingBytes) bytes); wait for acknowledgements or raise the limits")))
            } else if state.closed {
                work.rejected.append((request, .closedError))
            } else {
                break  // wait for space, in order
            }
            taken += 1
        }
        state.queue.removeFirst(taken)
        if state.closed && state.queue.isEmpty && work.requests.isEmpty && work.jobs.isEmpty && work.flushWaiters.isEmpty && work.acknowledge == nil {
            work.exit = true
        }
        if work.isEmpty && !work.exit && !intervalDue.due {
            state.writerSleeping = true
        }
        return work
    }

    /// Writes the newest attempt counts (the node's record of how often it sent each number).
    /// A failure is logged and costs only counts: the next snapshot starts a new file.
    private func writeAttempts(_ attempts: SentAttempts) {
        do throws(SpoolError) {
            try writer.attemptFile.write(attempts)
        } catch {
            configuration.logger.warning("spool: cannot record attempt counts; a restart would count attempts from older counts", metadata: [
                "peer": "\(peer)", "file": "\(writer.attemptFile.path)", "error": "\(error)"])
        }
    }

    // MARK: Appending

    /// Writes a batch of appends. When one fails with `storageFull` while there are spare
    /// files or the active segment is wholly acknowledged, the failed appends and those
    /// after them are not failed at once: the spares are deleted, or else the segment's space
    /// is given back (``reclaimActiveSegment(force:)``), and they are written again (after a
    /// give-back once, `mayReclaim` false on that second pass).
    private func write(_ requests: [AppendRequest], mayReclaim: Bool = true) {
        let logger = configuration.logger
        var start = state.withLock { $0.nextSequence }
        var retry: [AppendRequest] = []
        var retryError: SpoolError?
        var pending: [(AppendRequest, ClosedRange<UInt64>)] = []
        var buffer = ByteWriter(capacity: 64 * 1024)
        var offsets: [UInt32] = []
        var next = start
        var firstEnqueuedAt: Int64?

        func fail(_ error: SpoolError, _ requests: some Sequence<AppendRequest>) {
            metrics.appendErrors.increment()
            logger.error("spool: append failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
            for request in requests { request.completion(.failure(error)) }
        }

        // Whether a failure should wait for the retry instead of failing its appends: on a
        // full disk, when there are spare files to delete or an acknowledged active segment
        // to give back.
        func deferForRetry(_ error: SpoolError) -> Bool {
            if retryError != nil { return true }
            guard mayReclaim, error.code == .storageFull, writer.spares.count > 0 || activeSegmentWhollyAcknowledged() else { return false }
            retryError = error
            return true
        }

        // Writes what is buffered to the active segment, syncs per policy, publishes.
        func flushBuffer() -> SpoolError? {
            guard !pending.isEmpty else { return nil }
            defer {
                pending.removeAll(keepingCapacity: true)
                offsets.removeAll(keepingCapacity: true)
                buffer.bytes.removeAll(keepingCapacity: true)
                firstEnqueuedAt = nil
            }
            guard let active = state.withLock({ $0.active }) else {
                let error = SpoolError(code: .io, message: "internal: no active segment")
                fail(error, pending.map(\.0))
                next = start
                return error
            }
            // The records and, after them, the end marker (which the next append overwrites).
            let written = Int64(buffer.bytes.count)
            if active.segment.version >= 2 { buffer.bytes.append(contentsOf: RecordFormat.endMarker) }
            do {
                _ = try active.segment.fd.writeAll(toAbsoluteOffset: active.end, buffer.bytes)
                if configuration.durability.syncsEachBatch {
                    try active.segment.fd.datasync()
                }
            } catch {
                let call = (error as? Errno) != nil ? "pwrite/fdatasync" : "write"
                let spoolError = SpoolError.from(error, call: call, path: active.segment.path, doing: "appending \(pending.count) record(s)")
                writer.needsRepair = true
                repair()
                next = start
                if deferForRetry(spoolError) {
                    retry += pending.map(\.0)
                } else {
                    fail(spoolError, pending.map(\.0))
                }
                return spoolError
            }
            let last = next - 1
            if configuration.durability.syncsEachBatch {
                configuration.testHooks.afterSegmentSync?(last)
                metrics.syncs.increment()
                metrics.recordsPerSync.record(offsets.count)
            } else {
                writer.unsynced = true
                writer.highestUnsynced = last
            }
            let counts = state.withLock { state -> (Int, Int64) in
                let lastIndex = state.segments.count - 1
                state.segments[lastIndex].offsets.append(contentsOf: offsets)
                state.segments[lastIndex].end += written
                state.nextSequence = next
                if state.pendingCount == 0 { state.oldestPendingEnqueuedAt = firstEnqueuedAt }
                state.pendingCount += offsets.count
                state.pendingBytes += written
                state.appendsCompleted += pending.count
                if configuration.durability.syncsEachBatch {
                    state.syncs += 1
                    state.recordsSynced += offsets.count
                }
                return (state.pendingCount, state.pendingBytes)
            }
            start = next
            metrics.appends.increment(by: Int64(offsets.count))
            metrics.appendedBytes.increment(by: written)
            metrics.pendingMessages.record(counts.0)
            metrics.pendingBytes.record(counts.1)
            for (request, range) in pending { request.completion(.success(range)) }
            return nil
        }

        if writer.needsRepair && !repair() {
            fail(SpoolError(code: .io, message: "the segment could not be truncated back to its last good record after an earlier failed write; retrying on the next append", path: state.withLock { $0.active?.segment.path }), requests)
            return
        }
        var active = state.withLock { $0.active }
        var remaining = requests[...]
        while let request = remaining.popFirst() {
            if retryError != nil {
                retry.append(request)
                continue
            }
            do throws(SpoolError) {
                let activeSize = (active?.end ?? 0) + Int64(buffer.bytes.count)
                let activeCount = (active?.count ?? 0) + offsets.count
                // A new segment when the active one is full, or when the next number does
                // not follow its last record (after recovery skipped quarantined numbers):
                // record i of a segment always holds base + i.
                let misaligned = active.map { $0.nextSequence + UInt64(offsets.count) != next } ?? true
                if misaligned || (activeSize + request.bytes > Int64(configuration.segmentSize) && activeCount > 0) {
                    let flushError = flushBuffer()
                    active = state.withLock { $0.active }
                    if let flushError { throw flushError }
                    try roll(base: next)
                    active = state.withLock { $0.active }
                }
                let top = next + UInt64(request.entries.count) - 1
                if top > writer.metaFile.current.reservedUpTo {
                    try writer.metaFile.write(
                        acknowledgedUpTo: writer.metaFile.current.acknowledgedUpTo,
                        reservedUpTo: top + configuration.sequenceReservationBlock,
                        sync: configuration.durability.syncsAtAll
                    )
                }
            } catch {
                if deferForRetry(error) { retry.append(request) } else { fail(error, [request]) }
                continue
            }
            let now = wallClockNanoseconds()
            if firstEnqueuedAt == nil { firstEnqueuedAt = now }
            let base = active?.end ?? 0
            let first = next
            for entry in request.entries {
                offsets.append(UInt32(truncatingIfNeeded: base + Int64(buffer.bytes.count)))
                RecordFormat.encode(
                    into: &buffer, type: .message, sequenceNumber: next, enqueuedAt: now,
                    expiresAt: entry.expiresAt, attempt: entry.attempt, flags: entry.storedFlags
                ) { entry.writeBody(into: &$0) }
                next += 1
            }
            pending.append((request, first...(next - 1)))
        }
        _ = flushBuffer()
        guard let retryError, !retry.isEmpty else { return }
        // This function's own reference to the old segment would keep its file open, and
        // its blocks allocated, through the reclaim: let go of it first.
        active = nil
        if writer.spares.dropAll(logger: logger) {
            // Once more with the same options: the pool is empty now, so a second full disk
            // can only give back the active segment, once.
            logger.notice("spool: the disk was full; deleted the spare segment files and retried the append", metadata: ["peer": "\(peer)"])
            write(retry, mayReclaim: true)
        } else if reclaimActiveSegment(force: true) {
            logger.notice("spool: the disk was full; gave back the space of the wholly acknowledged active segment and retried the append", metadata: ["peer": "\(peer)"])
            write(retry, mayReclaim: false)
        } else {
            fail(retryError, retry)
        }
    }

    /// Truncates the active segment back to its last good end after a failed write.
    @discardableResult
    func repair() -> Bool {
        guard writer.needsRepair else { return true }
        guard let active = state.withLock({ $0.active }) else {
            writer.needsRepair = false
            return true
        }
        do {
            try active.segment.fd.resize(to: active.end)
            writer.needsRepair = false
            return true
        } catch {
            configuration.logger.error("spool: could not truncate a failed append; will retry", metadata: ["peer": "\(peer)", "file": "\(active.segment.path)", "error": "\(error)"])
            return false
        }
    }

    // MARK: Giving back a wholly acknowledged active segment

    /// The active segment is rolled once all of it is acknowledged and it holds at least
    /// this many bytes (1 MiB, or a quarter of `segmentSize` if that is smaller), so at most
    /// this much acknowledged data stays on disk after everything was delivered.
    static func acknowledgedRollThreshold(segmentSize: Int) -> Int64 {
        Int64(min(1 << 20, segmentSize / 4))
    }

    /// Whether the active segment's file holds anything besides its header and every number
    /// ever handed out (below the next one) is acknowledged, in memory: then the active
    /// segment, the newest, is wholly acknowledged, and after a crash at any point of a roll
    /// recovery continues at the same next number, whichever files survived (the mark alone
    /// says so once it is durable).
    func activeSegmentWhollyAcknowledged() -> Bool {
        state.withLock { Self.whollyAcknowledgedActive($0) != nil }
    }

    /// The active segment, if ``activeSegmentWhollyAcknowledged()``.
    private static func whollyAcknowledgedActive(_ state: OutboundLogState) -> ActiveSegment? {
        guard let active = state.active, active.end > Int64(FileHeader.size),
              state.acknowledgedUpTo &+ 1 >= state.nextSequence, active.segment.baseSequence < state.nextSequence
        else { return nil }
        return active
    }

    /// Gives back the space of the active segment when it is wholly acknowledged and holds at
    /// least ``acknowledgedRollThreshold(segmentSize:)`` bytes (any size when `force`, after
    /// an append failed for lack of space): makes the acknowledged mark durable, starts a new
    /// empty segment at the next sequence number, so the old one is no longer the newest, and
    /// deletes it through the normal path. Crash-safe: the mark is synced before anything is
    /// deleted, and the new segment's base keeps the next number (see docs/SPOOL-FORMAT.md).
    /// Returns whether the old segment was deleted.
    @discardableResult
    func reclaimActiveSegment(force: Bool) -> Bool {
        guard let (path, bytes, acknowledged, next) = retireActiveSegment(force: force) else { return false }
        // 3. The old segment is wholly acknowledged and no longer the newest: the usual
        // deletion. No reference to it is left here, so unless `force` its descriptor closes
        // on the releaser's thread, not this one.
        persistAcknowledgement(acknowledged, freeSpaceNow: force)
        let deleted = !FileOps.exists(path)
        if deleted {
            configuration.logger.debug("spool: gave back a wholly acknowledged active segment", metadata: [
                "peer": "\(peer)", "file": "\(path)", "bytes": "\(bytes)", "next": "\(next)",
            ])
        }
        return deleted
    }

    /// Steps 1 and 2 of ``reclaimActiveSegment(force:)``: the durable mark and the new newest
    /// segment. Returns the old segment's path and size, the mark and the next number, or
    /// `nil` if there is nothing to give back or a step failed (logged).
    private func retireActiveSegment(force: Bool) -> (FilePath, Int64, UInt64, UInt64)? {
        let threshold = Self.acknowledgedRollThreshold(segmentSize: configuration.segmentSize)
        // Read together: acknowledgements only grow, and only this thread appends, so what
        // holds here holds throughout.
        let snapshot = state.withLock { state -> (ActiveSegment, UInt64, UInt64)? in
            guard let active = Self.whollyAcknowledgedActive(state) else { return nil }
            return (active, state.acknowledgedUpTo, state.nextSequence)
        }
        guard let (active, acknowledged, next) = snapshot, force || active.end >= threshold else { return nil }
        do throws(SpoolError) {
            // 1. The mark covering every record of the segment, durable before any deletion.
            if acknowledged > writer.metaFile.current.acknowledgedUpTo {
                try writer.metaFile.write(acknowledgedUpTo: acknowledged, reservedUpTo: writer.metaFile.current.reservedUpTo, sync: true)
            } else {
                try writer.metaFile.syncIfNeeded()
            }
            state.withLock { $0.persistedAcknowledgedUpTo = max($0.persistedAcknowledgedUpTo, acknowledged) }
            // 2. A new, empty newest segment whose base is the next sequence number.
            do {
                try roll(base: next, reusingSpare: false)
            } catch where error.code == .storageFull {
                // Not even room for a segment header. Everything ever handed out is acknowledged
                // (and the mark says so, durably), so the old segment's records can go first:
                // cut it back to its header, then start the new one in the space freed.
                configuration.logger.notice("spool: no room for a new segment; cutting the acknowledged active segment back to its header first", metadata: [
                    "peer": "\(peer)", "file": "\(active.segment.path)",
                ])
                try dropAcknowledgedRecords(of: active.segment)
                try roll(base: next, reusingSpare: false)
            }
        } catch {
            configuration.logger.error("spool: could not give back the space of the acknowledged active segment", metadata: [
                "peer": "\(peer)", "file": "\(active.segment.path)", "error": "\(error)",
            ])
            return nil
        }
        return (active.segment.path, active.end, acknowledged, next)
    }

    /// Truncates a wholly acknowledged segment to its header (synced) and indexes it as empty.
    /// Only while every number below the next one is durably acknowledged: recovery then
    /// continues right above the mark even with this empty segment as the newest.
    private func dropAcknowledgedRecords(of segment: Segment) throws(SpoolError) {
        do {
            try segment.fd.resize(to: Int64(FileHeader.size))
            try segment.fd.datasync()
        } catch {
            throw SpoolError.from(error, call: "ftruncate", path: segment.path, doing: "giving back an acknowledged segment's space")
        }
        writer.unsynced = false
        state.withLock { state in
            state.segments.removeAll { $0.segment === segment }
            state.segments.append(SegmentIndex(segment: segment, offsets: [], end: Int64(FileHeader.size)))
        }
    }

    /// Seals the active segment (synced) and starts a new one whose first record is `base`,
    /// in a spare file if there is one and `reusingSpare` (not when giving back the space of
    /// an acknowledged active segment: the new one may then stay idle, and a reused file
    /// would keep its old size on disk for as long).
    private func roll(base: UInt64, reusingSpare: Bool = true) throws(SpoolError) {
        if writer.unsynced, configuration.durability.syncsAtAll, let active = state.withLock({ $0.active }) {
            do { try active.segment.fd.datasync() } catch {
                throw SpoolError.system("fdatasync", error, path: active.segment.path, doing: "sealing the segment")
            }
            writer.unsynced = false
        }
        let segment = try Segment.create(
            in: directory, streamID: streamID, baseSequence: base, sync: configuration.durability.syncsAtAll,
            reusing: reusingSpare ? writer.spares.take() : nil
        )
        state.withLock { $0.segments.append(SegmentIndex(segment: segment, offsets: [], end: Int64(FileHeader.size))) }
    }
}
