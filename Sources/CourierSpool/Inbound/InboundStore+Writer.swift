import CourierSystem
import Logging
import Metrics
import Synchronization
import SystemPackage

/// The store's thread: writes what changed, syncs it under the durability policy, completes
/// the waiting changes, compacts the journal.
extension InboundStore {
    /// What one pass of the store's thread took under the lock.
    private struct Pass {
        var waiters: [@Sendable (Result<Void, SpoolError>) -> Void] = []
        /// The keys and reservation ceilings of the snapshots written (nil: none written).
        var written: Result<[(InboundStreamKey, UInt64)], SpoolError>?
        var compactionDue = false
        var intervalDue = false
        var sleep: Int64?
        var exit = false
    }

    /// How long the store's thread waits after a failed write or sync before it retries.
    private static let retryDelay: Int64 = 50_000_000

    func runWriter() {
        let policy = configuration.durability
        while true {
            let pass = state.withLock { state -> Pass in
                var pass = Pass()
                if case .interval(let period) = policy.kind, state.unsynced {
                    let remaining = journal.lastSyncAt + period.nanoseconds - monotonicNanoseconds()
                    if remaining <= 0 { pass.intervalDue = true } else { pass.sleep = remaining }
                }
                let snapshots = state.dirty.compactMap { state.streams[$0] }
                state.dirty.removeAll(keepingCapacity: true)
                let verdicts = state.unwrittenVerdicts.compactMap { key, sequence in
                    state.verdicts[key]?[sequence].map { (key, sequence, $0) }
                }
                state.unwrittenVerdicts.removeAll(keepingCapacity: true)
                swap(&pass.waiters, &state.waiters)
                pass.exit = state.closed && snapshots.isEmpty && pass.waiters.isEmpty
                if !snapshots.isEmpty {
                    pass.written = write(snapshots, verdicts: verdicts, state: &state)
                    // The sync that follows covers everything written so far.
                    if ceilingsRequired, case .success = pass.written { state.unsynced = false }
                    pass.compactionDue = journal.file.end > Int64(configuration.inbound.compactionThreshold)
                        && journal.file.end > 2 * journal.compactedSize
                } else if !pass.waiters.isEmpty || pass.exit || pass.intervalDue {
                    // Work to do without sleeping.
                } else {
                    state.sleeping = true
                }
                return pass
            }
            var result: Result<Void, SpoolError> = .success(())
            switch pass.written {
            case .failure(let error)?:
                result = .failure(error)
            case .success(let ceilings)? where ceilingsRequired:
                result = syncJournal(crediting: ceilings)
            default:
                break
            }
            for waiter in pass.waiters { waiter(result) }
            var failed = false
            if case .failure = result { failed = true }
            if pass.intervalDue, case .failure(let error) = syncJournal(crediting: []) {
                failed = true
                result = .failure(error)
            }
            if pass.compactionDue, !failed {
                do throws(SpoolError) { try compactJournal() } catch {
                    configuration.logger.error("spool: compacting the inbound journal failed; it goes on growing until a compaction succeeds", metadata: ["error": "\(error)"])
                }
            }
            if pass.exit {
                if state.withLock({ $0.unsynced || $0.directoryUnsynced }) { _ = syncJournal(crediting: []) }
                return
            }
            if failed, giveUpAfterClose(result) { return }
            if failed {
                signal.wait(timeoutNanoseconds: Self.retryDelay)
            } else if pass.written == nil && pass.waiters.isEmpty && !pass.intervalDue {
                signal.wait(timeoutNanoseconds: pass.sleep)
            }
        }
    }

    /// Once the store is closed, a failed write or sync ends the thread instead of retrying
    /// (a full disk must not make `close()` wait forever): what is still dirty stays as the
    /// journal last held it, and waiting changes fail. Returns whether the thread must end.
    private func giveUpAfterClose(_ result: Result<Void, SpoolError>) -> Bool {
        let waiters = state.withLock { state -> [@Sendable (Result<Void, SpoolError>) -> Void]? in
            guard state.closed else { return nil }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        guard let waiters else { return false }
        let error: SpoolError
        if case .failure(let failure) = result { error = failure } else { error = .closedError }
        for waiter in waiters { waiter(.failure(error)) }
        configuration.logger.error("spool: the inbound journal could not be brought up to date while closing; the last state written stands", metadata: ["error": "\(error)"])
        return true
    }

    /// Appends verdicts, then snapshots, in one write (the state's lock held): a verdict is
    /// durable no later than the processed mark it belongs to.
    private func write(_ snapshots: [InboundStreamState], verdicts: [(InboundStreamKey, UInt64, InboundVerdict)],
                       state: inout State) -> Result<[(InboundStreamKey, UInt64)], SpoolError> {
        var writer = ByteWriter(capacity: 128 * snapshots.count)
        for (key, sequence, verdict) in verdicts { encodeVerdict(verdict, of: key, sequence: sequence, into: &writer) }
        for stream in snapshots { encodeSnapshot(stream, into: &writer) }
        do throws(SpoolError) {
            _ = try journal.file.append(writer.bytes, sync: false)
            state.unsynced = true
            return .success(snapshots.map { (InboundStreamKey(sender: $0.sender, streamID: $0.streamID), $0.reservationCeiling) })
        } catch {
            // Keep the changes dirty so the next write retries them.
            for stream in snapshots { state.dirty.insert(InboundStreamKey(sender: stream.sender, streamID: stream.streamID)) }
            state.unwrittenVerdicts.append(contentsOf: verdicts.map { ($0.0, $0.1) })
            configuration.logger.error("spool: writing inbound state failed", metadata: ["file": "\(journal.file.path)", "error": "\(error)"])
            return .failure(error)
        }
    }

    /// One journal record holding `stream`'s snapshot, stamped with this boot's id.
    func encodeSnapshot(_ stream: InboundStreamState, into writer: inout ByteWriter) {
        RecordFormat.encode(
            into: &writer, type: .inboundState, sequenceNumber: 0, enqueuedAt: stream.lastActivity,
            expiresAt: nil, attempt: 0, flags: 0, body: stream.encodedBody(bootID: bootID))
    }

    /// One journal record holding a verdict kept for the sender.
    func encodeVerdict(_ verdict: InboundVerdict, of key: InboundStreamKey, sequence: UInt64, into writer: inout ByteWriter) {
        RecordFormat.encode(
            into: &writer, type: .inboundVerdict, sequenceNumber: sequence, enqueuedAt: wallClockNanoseconds(),
            expiresAt: nil, attempt: 0, flags: 0) { InboundVerdict.encodeBody(key, sequence: sequence, verdict: verdict, into: &$0) }
    }

    /// Syncs the journal (on the store's thread, without the lock); then the ceilings of the
    /// snapshots written before it are durable. After a failure nothing written but not yet
    /// synced is trusted any more (the kernel may have dropped those pages): the snapshots
    /// are written again, and hand-outs wait for syncs from then on.
    private func syncJournal(crediting ceilings: [(InboundStreamKey, UInt64)]) -> Result<Void, SpoolError> {
        let directoryUnsynced = state.withLock { state -> Bool in
            if !ceilingsRequired { state.unsynced = false }
            return state.directoryUnsynced
        }
        do throws(SpoolError) {
            if directoryUnsynced {
                try FileOps.syncDirectory(directory)
                state.withLock { $0.directoryUnsynced = false }
            }
            try journal.file.sync()
            journal.lastSyncAt = monotonicNanoseconds()
            state.withLock { state in
                state.syncs += 1
                state.syncFailing = false
                for (key, ceiling) in ceilings where state.streams[key] != nil {
                    state.durableCeilings[key] = max(state.durableCeilings[key] ?? 0, min(ceiling, state.streams[key]!.reservationCeiling))
                }
            }
            syncMetric.increment()
            return .success(())
        } catch {
            journal.lastSyncAt = monotonicNanoseconds()
            state.withLock { state in
                state.unsynced = true
                // Pages whose writeback failed are clean again: only writing them anew makes
                // them durable. Every stream once per run of failures, then what each failed
                // pass wrote, so a disk that keeps failing does not grow the journal fast.
                if !state.syncFailing { state.dirty.formUnion(state.streams.keys) }
                for (key, _) in ceilings { state.dirty.insert(key) }
                state.syncFailing = true
                if ceilingsRequired { state.syncFailed = true }
            }
            configuration.logger.error("spool: syncing inbound state failed; hand-outs now wait for each reservation's sync", metadata: ["error": "\(error)"])
            return .failure(error)
        }
    }

    /// Drops streams idle for longer than `retain` that are not their sender's most recently
    /// active stream, and keeps at most `perSender` streams of each sender (the most recently
    /// active).
    static func pruned(_ streams: [InboundStreamKey: InboundStreamState], retain: Duration, perSender: Int) -> [InboundStreamKey: InboundStreamState] {
        let now = wallClockNanoseconds()
        var bySender: [String: [InboundStreamState]] = [:]
        for stream in streams.values { bySender[stream.sender, default: []].append(stream) }
        var kept: [InboundStreamKey: InboundStreamState] = [:]
        kept.reserveCapacity(streams.count)
        for (_, own) in bySender {
            let newestFirst = own.sorted { ($0.lastActivity, $0.streamID) > ($1.lastActivity, $1.streamID) }
            for (rank, stream) in newestFirst.prefix(max(1, perSender)).enumerated()
            where rank == 0 || now - stream.lastActivity < retain.nanoseconds {
                kept[InboundStreamKey(sender: stream.sender, streamID: stream.streamID)] = stream
            }
        }
        return kept
    }

    /// Rewrites the journal with one snapshot per live stream, dropping idle old incarnations.
    /// The new file is written and synced without the lock; then, with it, what was appended
    /// meanwhile is copied over and the file renamed into place, so the I/O thread's writes
    /// wait only for that. Until the directory is synced, no sync counts (see
    /// ``syncJournal(crediting:)``).
    func compactJournal() throws(SpoolError) {
        let now = wallClockNanoseconds()
        let (live, verdicts, from) = state.withLock { state -> ([InboundStreamState], [InboundStreamKey: [UInt64: InboundVerdict]], Int64) in
            state.streams = Self.pruned(state.streams, retain: configuration.inbound.retainOldStreamsFor,
                                        perSender: configuration.inbound.maxStreamsPerSender)
            state.durableCeilings = state.durableCeilings.filter { state.streams[$0.key] != nil }
            state.verdicts = state.verdicts.filter { state.streams[$0.key] != nil }
            return (Array(state.streams.values), state.verdicts, journal.file.end)
        }
        var writer = ByteWriter(capacity: FileHeader.size + live.count * 96)
        writer.append(FileHeader(kind: .inbound, streamID: 0, baseSequence: 0, createdAt: now).encoded())
        for stream in live {
            let key = InboundStreamKey(sender: stream.sender, streamID: stream.streamID)
            for (sequence, verdict) in (verdicts[key] ?? [:]).sorted(by: { $0.key < $1.key }) {
                encodeVerdict(verdict, of: key, sequence: sequence, into: &writer)
            }
            encodeSnapshot(stream, into: &writer)
        }
        let bytes = writer.bytes
        let temporary = FilePath(journalPath.string + ".tmp")
        try FileOps.writeAndSync(bytes, to: temporary)
        let replacement: RecordFile
        do {
            replacement = try RecordFile.open(path: temporary, kind: .inbound, peer: nil, maxRecordSize: 1 << 26).file
        } catch {
            try? FileOps.unlinkFile(temporary)
            throw error
        }
        let replaced: RecordFile
        do {
            replaced = try swapIn(replacement, temporary: temporary, copyingFrom: from)
        } catch {
            try? FileOps.unlinkFile(temporary)
            throw error
        }
        // The old journal has no name left; its blocks are freed a slice at a time on the
        // releaser's thread (through a second descriptor), so that neither this thread nor
        // any sync on the disk waits for all of it. Closing this descriptor frees nothing.
        if let second = try? replaced.fd.duplicate() {
            do throws(SpoolError) { try FileReleaser.shared.release(unlinkedFile: second) } catch {
                configuration.logger.error("spool: the replaced inbound journal was freed on the store's thread", metadata: ["error": "\(error)"])
            }
        } else {
            FileOps.freeInSlices(replaced.fd)
        }
        withExtendedLifetime(replaced) {}
        do throws(SpoolError) {
            try FileOps.syncDirectory(directory)
            state.withLock { $0.directoryUnsynced = false }
        } catch {
            configuration.logger.error("spool: the compacted inbound journal is in place, but syncing its directory failed; retried before the next sync counts", metadata: ["error": "\(error)"])
        }
        configuration.logger.debug("spool: compacted the inbound journal", metadata: ["streams": "\(live.count)", "bytes": "\(bytes.count)"])
    }

    /// With the lock: copies what was appended to the journal since `from` to `replacement`,
    /// renames it into place and makes it the journal. Returns the old journal file.
    private func swapIn(_ replacement: RecordFile, temporary: FilePath, copyingFrom from: Int64) throws(SpoolError) -> RecordFile {
        try state.withLock { (state: inout State) throws(SpoolError) -> RecordFile in
            let old = journal.file
            let end = old.end
            if end > from {
                _ = try replacement.append(try old.read(at: from, count: Int(end - from)), sync: false)
            }
            try FileOps.renameFile(temporary, to: journalPath)
            replacement.renamed(to: journalPath)
            journal.file = replacement
            journal.compactedSize = replacement.end
            state.directoryUnsynced = true
            return old
        }
    }
}
