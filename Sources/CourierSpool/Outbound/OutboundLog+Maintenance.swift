import CoreMetrics
import Logging
import Synchronization
import SystemPackage

// Syncing and acknowledgement persistence, run by the log's writer thread.
extension OutboundLog {
    // MARK: Syncing

    func syncForInterval() {
        guard writer.unsynced, let active = state.withLock({ $0.active }) else { return }
        do {
            try active.segment.fd.datasync()
            writer.unsynced = false
            writer.lastSyncAt = monotonicNanoseconds()
            configuration.testHooks.afterSegmentSync?(writer.highestUnsynced)
            metrics.syncs.increment()
            state.withLock { $0.syncs += 1 }
        } catch {
            writer.lastSyncAt = monotonicNanoseconds()
            configuration.logger.error("spool: interval sync failed", metadata: ["peer": "\(peer)", "file": "\(active.segment.path)", "error": "\(error)"])
        }
    }

    func flushNow() -> Result<Void, SpoolError> {
        if let active = state.withLock({ $0.active }) {
            do { try active.segment.fd.datasync() } catch {
                return .failure(.system("fdatasync", error, path: active.segment.path, doing: "flushing the log"))
            }
            writer.unsynced = false
            writer.lastSyncAt = monotonicNanoseconds()
        }
        let target = state.withLock { $0.acknowledgedUpTo }
        if target > writer.metaFile.current.acknowledgedUpTo {
            do throws(SpoolError) {
                try writer.metaFile.write(acknowledgedUpTo: target, reservedUpTo: writer.metaFile.current.reservedUpTo, sync: true)
                state.withLock { $0.persistedAcknowledgedUpTo = max($0.persistedAcknowledgedUpTo, target) }
            } catch {
                return .failure(error)
            }
        }
        return .success(())
    }

    // MARK: Acknowledging

    /// Writes the acknowledged mark and deletes the segments wholly below it. Their
    /// descriptors are closed by the ``FileReleaser`` (freeing a file's blocks takes
    /// milliseconds), unless `freeSpaceNow`: then here, so the space is free on return.
    func persistAcknowledgement(_ target: UInt64, freeSpaceNow: Bool = false) {
        var (doomed, files) = state.withLock { state -> ([SegmentIndex], [Segment]) in
            var doomed: [SegmentIndex] = []
            while state.segments.count > 1, state.segments[0].lastSequence <= target {
                doomed.append(state.segments.removeFirst())
            }
            return (doomed, SegmentIndex.filesToDelete(doomed, keeping: state.segments.first))
        }
        do throws(SpoolError) {
            if target > writer.metaFile.current.acknowledgedUpTo {
                try writer.metaFile.write(
                    acknowledgedUpTo: target,
                    reservedUpTo: writer.metaFile.current.reservedUpTo,
                    sync: configuration.durability.syncsAtAll || !files.isEmpty
                )
            } else if !files.isEmpty || configuration.durability.syncsAtAll {
                try writer.metaFile.syncIfNeeded()
            }
            state.withLock { $0.persistedAcknowledgedUpTo = max($0.persistedAcknowledgedUpTo, target) }
            for segment in files {
                // Kept for reuse as a later segment, unless the space is wanted now.
                if !freeSpaceNow, writer.spares.keep(segment, now: monotonicNanoseconds()) { continue }
                try FileOps.unlinkFile(segment.path)
            }
            if !files.isEmpty { try FileOps.syncDirectory(directory) }
            if !freeSpaceNow {
                // The deleted files go to the releaser, which frees them a slice at a time.
                // Dropping `doomed` here closes nothing: each of its segments is either in
                // `files` or shares its file with the first segment kept.
                doomed = []
                do throws(SpoolError) { try FileReleaser.shared.release(deleted: &files) } catch {
                    configuration.logger.error("spool: acknowledged segments were freed on the writer's thread", metadata: ["peer": "\(peer)", "error": "\(error)"])
                }
            }
        } catch {
            // Put back what was not deleted; the next acknowledgement retries.
            let survivors = doomed.filter { FileOps.exists($0.segment.path) }
            state.withLock { state in
                state.segments.insert(contentsOf: survivors, at: 0)
                state.persistedAcknowledgedUpTo = min(state.persistedAcknowledgedUpTo, writer.metaFile.current.acknowledgedUpTo)
            }
            configuration.logger.error("spool: could not write the acknowledged mark or delete acknowledged segments; will retry", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    /// Reads the enqueue time of the oldest pending record, after an acknowledgement.
    func refreshOldestIfNeeded() {
        let target = state.withLock { state -> (Segment, Int64, Int)? in
            guard state.oldestNeedsRefresh else { return nil }
            state.oldestNeedsRefresh = false
            var i = state.firstSegment(holdingAtLeast: state.acknowledgedUpTo + 1)
            while i < state.segments.count, state.segments[i].count == 0 { i += 1 }
            guard i < state.segments.count else { return nil }
            let index = state.segments[i]
            let sequence = max(state.acknowledgedUpTo + 1, index.baseSequence)
            return (index.segment, index.offset(of: sequence), Int(index.endOffset(of: sequence) - index.offset(of: sequence)))
        }
        guard let (segment, offset, length) = target else { return }
        guard let bytes = try? segment.fd.readBytes(at: offset, count: length) else { return }
        let enqueuedAt: Int64? = bytes.withUnsafeBytes { raw in
            if case .record(let header) = RecordFormat.decode(raw, at: 0, maxLength: configuration.maxRecordSize) { return header.enqueuedAt }
            return nil
        }
        state.withLock { state in
            if !state.oldestNeedsRefresh && state.pendingCount > 0 { state.oldestPendingEnqueuedAt = enqueuedAt }
        }
    }
}
