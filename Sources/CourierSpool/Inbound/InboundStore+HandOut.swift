import CourierSystem
import Logging
import Synchronization

/// The reservation a receiver makes before each hand-out, written from the caller's thread.
extension InboundStore {
    /// Records that every sequence number up to `sequenceNumber` of this stream may now be
    /// handed to the application, and says whether the caller may hand them out at once.
    ///
    /// The snapshot with the new reservation is written from the calling thread (one small
    /// `pwrite` into the page cache, which outlives a crash of the process). Under group
    /// commit that suffices when a synced snapshot already holds a reservation ceiling at or
    /// above `sequenceNumber`; the ceiling is raised ``InboundConfiguration/reservationAhead``
    /// beyond it, in the background, half a ceiling before it runs out. Otherwise (the first
    /// reservation of a stream after open, a ceiling not yet synced, a failed write, or group
    /// commit on a system without a boot id) the store's thread writes and syncs the snapshot,
    /// then runs `completion`.
    ///
    /// It writes to the journal on the calling thread: call it from a thread of your own (the
    /// node's I/O thread does), not from a task on the cooperative pool.
    ///
    /// - Returns: `true`: hand out now (`completion` is not called). `false`: hand out when
    ///   `completion` reports success.
    package func reserveForHandOut(sender: String, streamID: UInt64, upTo sequenceNumber: UInt64, completion: @escaping @Sendable (Result<Void, SpoolError>) -> Void) -> Bool {
        guard handsOutBeforeSync else {
            reserve(sender: sender, streamID: streamID, upTo: sequenceNumber, completion: completion)
            return false
        }
        guard isValid(sender, else: completion) else { return false }
        let key = InboundStreamKey(sender: sender, streamID: streamID)
        let ahead = reservationAhead
        let wakesForInterval: Bool
        if case .interval = configuration.durability.kind { wakesForInterval = true } else { wakesForInterval = false }
        let (handOut, wake, closed) = state.withLock { state -> (Bool, Bool, Bool) in
            if state.closed { return (false, false, true) }
            let trusted = !state.syncFailed
            var raisesCeiling = false
            _ = state.update(key) { stream in
                stream.reservedUpTo = max(stream.reservedUpTo, sequenceNumber)
                if ceilingsRequired, stream.reservationCeiling < sequenceNumber &+ ahead / 2 {
                    stream.reservationCeiling = sequenceNumber &+ ahead
                    raisesCeiling = true
                }
                return nil
            }
            var written = false
            if trusted, !ceilingsRequired || sequenceNumber <= state.durableCeilings[key] ?? 0, let stream = state.streams[key] {
                var writer = ByteWriter(capacity: 96 + sender.utf8.count)
                // Verdicts not yet written go first: this snapshot may carry processed marks
                // the store's thread has not written yet, and a mark must never reach the
                // journal ahead of its verdict (a crash would keep the mark, lose the verdict,
                // and the sender would hear "processed").
                for (verdictKey, sequence) in state.unwrittenVerdicts {
                    if let verdict = state.verdicts[verdictKey]?[sequence] { encodeVerdict(verdict, of: verdictKey, sequence: sequence, into: &writer) }
                }
                encodeSnapshot(stream, into: &writer)
                do throws(SpoolError) {
                    _ = try journal.file.append(writer.bytes, sync: false)
                    written = true
                    state.unwrittenVerdicts.removeAll(keepingCapacity: true)
                } catch {
                    configuration.logger.error("spool: writing a reservation failed; the store's thread retries it", metadata: ["file": "\(journal.file.path)", "error": "\(error)"])
                }
            }
            let firstUnsynced = written && !state.unsynced
            if written { state.unsynced = true }
            if !written { state.waiters.append(completion) }
            if !written || raisesCeiling { state.dirty.insert(key) }
            let wake = state.sleeping && (!written || raisesCeiling || (wakesForInterval && firstUnsynced))
            if wake { state.sleeping = false }
            return (written, wake, false)
        }
        if closed {
            completion(.failure(.closedError))
            return false
        }
        if wake { signal.wake() }
        return handOut
    }
}
