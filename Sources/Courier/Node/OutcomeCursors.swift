import CoreMetrics
import CourierSpool
import Logging
import Synchronization
import SystemPackage
import ZeroMQ

/// The durable cursors behind ``Node/outcomes(for:extent:)``: per peer, how far the
/// application has acknowledged the outcomes of the peer's current stream (the spool's
/// `outcomes.cursor`, ``OutcomeCursor``). Each is read from its file once per run and
/// written through to it. All file work runs on dedicated threads, never on the cooperative
/// pool nor the I/O thread, one piece at a time, and none after ``close()``.
final class OutcomeCursors: Sendable {
    struct Known: Sendable {
        var stream: UInt64
        var consumedUpTo: UInt64
    }

    /// A damaged cursor file met while loading, for the caller to report.
    struct Damage: Sendable {
        var reason: String
        var path: FilePath
        var quarantinedTo: FilePath?
    }

    private struct Files {
        var closed = false
        var known: [String: Known] = [:]
    }

    /// Held across file work, so only ever taken on a dedicated thread (and by ``close()``,
    /// on the I/O thread as it ends, which then waits for a write in progress).
    private let files = Mutex(Files())
    /// A copy of `files.known`, for tasks to read without waiting on file work.
    private let cache = Mutex<[String: Known]>([:])

    /// How far the outcomes of `log`'s stream were acknowledged: 0 when never (or in another
    /// stream, or when the file is damaged: then `Damage` says so).
    func consumedUpTo(_ log: OutboundLog) async throws(CourierError) -> (UInt64, Damage?) {
        if let known = cache.withLock({ $0[log.peer] }), known.stream == log.streamID { return (known.consumedUpTo, nil) }
        return try await onFileThread { (files: inout Files) throws(CourierError) -> (UInt64, Damage?) in
            let (known, damage) = try Self.load(log, in: &files)
            return (known.consumedUpTo, damage)
        }
    }

    /// Moves the cursor of `log`'s stream to `sequence` and makes it durable; a cursor
    /// already there or beyond stays.
    func advance(_ log: OutboundLog, through sequence: UInt64) async throws(CourierError) -> Damage? {
        try await onFileThread { (files: inout Files) throws(CourierError) -> Damage? in
            let (known, damage) = try Self.load(log, in: &files)
            guard sequence > known.consumedUpTo else { return damage }
            do throws(SpoolError) {
                try OutcomeCursor.write(OutcomeCursor(streamID: log.streamID, consumedUpTo: sequence), in: log.directory)
            } catch {
                throw CourierError(spoolError: error, doing: "writing the outcome cursor of peer \(log.peer)")
            }
            files.known[log.peer] = Known(stream: log.streamID, consumedUpTo: sequence)
            return damage
        }
    }

    /// No file work from now on (the node is releasing its data directory); waits for any
    /// in progress.
    func close() {
        files.withLock { $0.closed = true }
    }

    private static func load(_ log: OutboundLog, in files: inout Files) throws(CourierError) -> (Known, Damage?) {
        if let known = files.known[log.peer], known.stream == log.streamID { return (known, nil) }
        var consumed: UInt64 = 0
        var damage: Damage?
        do throws(SpoolError) {
            switch try OutcomeCursor.read(in: log.directory) {
            case .missing:
                break
            case .cursor(let cursor):
                // A cursor of another stream: the spool was wiped, and its stream is new.
                if cursor.streamID == log.streamID { consumed = cursor.consumedUpTo }
            case .damaged(let reason, let path, let quarantinedTo):
                damage = Damage(reason: reason, path: path, quarantinedTo: quarantinedTo)
            }
        } catch {
            throw CourierError(spoolError: error, doing: "reading the outcome cursor of peer \(log.peer)")
        }
        let known = Known(stream: log.streamID, consumedUpTo: consumed)
        files.known[log.peer] = known
        return (known, damage)
    }

    /// Runs `body` on a thread of its own, with the files' lock held.
    private func onFileThread<T: Sendable>(
        _ body: @escaping @Sendable (inout Files) throws(CourierError) -> T
    ) async throws(CourierError) -> T {
        let result: Result<T, CourierError>
        do {
            result = try await DedicatedThread.run(name: "courier-cursor") { [self] in
                files.withLock { files -> Result<T, CourierError> in
                    guard !files.closed else {
                        return .failure(CourierError(.shutDown, "the node is stopped; outcomes are reported again after the next start"))
                    }
                    defer { let known = files.known; cache.withLock { $0 = known } }
                    do throws(CourierError) { return .success(try body(&files)) } catch { return .failure(error) }
                }
            }
        } catch {
            throw CourierError(.storage, "cannot start a thread for the outcome cursor", underlying: error as? ZeroMQError)
        }
        return try result.get()
    }
}

extension NodeCore {
    /// Where an iteration of ``Node/outcomes(for:extent:)`` starts.
    struct OutcomeReportsStart {
        var stream: UInt64
        /// The durable cursor: the iteration reports from the number after it.
        var consumedUpTo: UInt64
        /// The last number assigned as the iteration starts.
        var lastAssigned: UInt64
    }

    func outcomeReportsStart(for peer: String) async throws(CourierError) -> OutcomeReportsStart {
        guard let log = log(for: peer) else {
            throw CourierError(.unknownPeer, "no peer \(peer) is configured; outcomes are reported for configured peers")
        }
        let (consumed, damage) = try await outcomeCursors.consumedUpTo(log)
        if let damage { reportDamagedCursor(of: peer, damage) }
        return OutcomeReportsStart(stream: log.streamID, consumedUpTo: consumed, lastAssigned: log.nextSequenceNumber - 1)
    }

    func acknowledgeOutcomes(through id: MessageID) async throws(CourierError) {
        guard let log = log(for: id.peer) else {
            throw CourierError(.unknownPeer, "no peer \(id.peer) is configured")
        }
        guard id.stream == log.streamID, id.sequence >= 1, id.sequence < log.nextSequenceNumber else {
            throw CourierError(.unknownMessage, "\(id) was never sent by this node: its stream to \(id.peer) is \(String(log.streamID, radix: 16)) and has numbers 1 to \(log.nextSequenceNumber - 1)")
        }
        let settled = try outcomes.settled(peer: id.peer, stream: id.stream, from: id.sequence, limit: 1).get()
        guard !settled.isEmpty else {
            throw CourierError(.unknownMessage, "the outcome of \(id) is not known yet, so it was never reported; acknowledge the ids that outcomes(for:) reported")
        }
        if let damage = try await outcomeCursors.advance(log, through: id.sequence) {
            reportDamagedCursor(of: id.peer, damage)
        }
    }

    /// A damaged cursor counts as none (outcomes are reported again from the stream's
    /// first message: at least once); it is counted, logged and reported as an event.
    private func reportDamagedCursor(of peer: String, _ damage: OutcomeCursors.Damage) {
        Counter(label: "courier_spool_corruptions_total", dimensions: [("peer", peer)]).increment()
        let moved = damage.quarantinedTo.map { "; moved to \($0)" } ?? ""
        logger.warning("the outcome cursor is damaged: the outcomes of the peer's stream are reported again from its first message", metadata: [
            "peer": "\(peer)", "file": "\(damage.path)", "reason": "\(damage.reason)",
            "quarantined-to": "\(damage.quarantinedTo.map(\.string) ?? "not moved")"])
        emit(.corruptionFound(description: "\(damage.path) at byte 0: \(damage.reason)\(moved); the outcomes of peer \(peer)'s stream are reported again from its first message"))
    }
}
