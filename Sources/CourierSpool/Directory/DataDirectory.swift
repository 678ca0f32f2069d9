import CourierSystem
import Logging
import Synchronization
import SystemPackage

/// One node's data directory: its outbound logs (one per peer, each with its dead
/// letters) and its inbound deduplication state, under an exclusive lock.
///
/// ```
/// <path>/LOCK                         flock'd for the node's lifetime; holds its pid
/// <path>/outbound/<peer dir>/         one per peer (see ``PeerDirectoryName``)
///     peer-id, log.meta, seg-<base>.log…, deadletters.log, quarantine/
/// <path>/inbound/inbound.journal      deduplication state, quarantine/
/// ```
///
/// Opening recovers every existing outbound log (so its I/O runs on the calling thread:
/// use ``open(path:configuration:)`` from async code). A second opener of the same
/// directory, in this process or another, fails at once with ``SpoolError/Code/locked``
/// naming the holder's pid. For read-only inspection while a node runs, use
/// ``SpoolInspector`` instead, which takes no lock.
package final class DataDirectory: Sendable {
    /// The directory.
    package let path: FilePath
    /// The configuration every log and the inbound store use.
    package let configuration: SpoolConfiguration
    /// The inbound deduplication state.
    package let inbound: InboundStore

    private let lock: DirectoryLock
    private let logs: Mutex<[String: OutboundLog]> = Mutex([:])
    private let closed: Mutex<Bool> = Mutex(false)

    /// Opens (creating if needed) and locks a data directory, recovering every outbound
    /// log in it. Blocking file I/O runs on the calling thread.
    package init(path: FilePath, configuration: SpoolConfiguration = SpoolConfiguration()) throws(SpoolError) {
        guard configuration.maxRecordSize >= RecordFormat.headerSize + 1, configuration.maxRecordSize <= 256 << 20 else {
            throw SpoolError(code: .invalidArgument, message: "maxRecordSize must be between 41 bytes and 256 MiB")
        }
        // Offsets within a segment are kept as 32-bit numbers.
        guard configuration.segmentSize >= 256, configuration.segmentSize <= 2 << 30 else {
            throw SpoolError(code: .invalidArgument, message: "segmentSize must be between 256 bytes and 2 GiB")
        }
        guard (0...64).contains(configuration.spareSegments) else {
            throw SpoolError(code: .invalidArgument, message: "spareSegments must be between 0 and 64")
        }
        guard configuration.maxPendingMessages > 0, configuration.maxPendingBytes > 0, configuration.sequenceReservationBlock > 0 else {
            throw SpoolError(code: .invalidArgument, message: "maxPendingMessages, maxPendingBytes and sequenceReservationBlock must be positive")
        }
        self.path = path
        self.configuration = configuration
        try FileOps.makeDirectory(path)
        lock = try DirectoryLock(path: path.appending("LOCK"))
        try FileOps.makeDirectory(path.appending("outbound"))
        inbound = try InboundStore(directory: path.appending("inbound"), configuration: configuration)
        do {
            for peer in try existingPeers() { _ = try outboundLog(for: peer) }
        } catch {
            close()
            throw error
        }
        configuration.logger.info("spool: opened data directory", metadata: ["path": "\(path)", "peers": "\(logs.withLock { $0.count })"])
    }

    /// Opens a data directory with the file work on a spool thread, off the cooperative pool.
    package static func open(path: FilePath, configuration: SpoolConfiguration = SpoolConfiguration()) async throws(SpoolError) -> DataDirectory {
        try await offPool { () throws(SpoolError) in try DataDirectory(path: path, configuration: configuration) }
    }

    /// The outbound log for `peer`, opened (and recovered, or created with a new stream id)
    /// on first use. Blocking file I/O on first use runs on the calling thread.
    package func outboundLog(for peer: String) throws(SpoolError) -> OutboundLog {
        try PeerDirectoryName.validate(peer)
        if closed.withLock({ $0 }) { throw SpoolError.closedError }
        if let log = logs.withLock({ $0[peer] }) { return log }
        let directory = path.appending("outbound").appending(PeerDirectoryName.encode(peer))
        try FileOps.makeDirectory(directory)
        let idPath = directory.appending("peer-id")
        if let fd = try FileOps.openForReading(idPath) {
            let stored = (try? fd.readBytes(at: 0, count: 256)).map { String(decoding: $0, as: UTF8.self) }
            try? fd.close()
            if let stored, stored != peer {
                throw SpoolError(code: .invalidArgument, message: "the directory for peer \(peer) belongs to peer \(stored) (name collision)", path: directory)
            }
        } else {
            try FileOps.writeAtomically(Array(peer.utf8), to: idPath)
        }
        // Open under the map's lock so two callers never open the same log twice.
        return try logs.withLock { logs throws(SpoolError) -> OutboundLog in
            if let log = logs[peer] { return log }
            let log = try OutboundLog(peer: peer, directory: directory, configuration: configuration)
            logs[peer] = log
            return log
        }
    }

    /// The outbound log for `peer`, opened on a spool thread on first use.
    package func outboundLog(for peer: String) async throws(SpoolError) -> OutboundLog {
        if let log = logs.withLock({ $0[peer] }) { return log }
        return try await Self.offPool { () throws(SpoolError) in try self.outboundLog(for: peer) }
    }

    /// The peers with an outbound log (open or on disk).
    package func peers() throws(SpoolError) -> [String] {
        let open = Set(logs.withLock { Array($0.keys) })
        return Array(open.union(try existingPeers())).sorted()
    }

    private func existingPeers() throws(SpoolError) -> [String] {
        try Self.peers(in: path.appending("outbound"))
    }

    static func peers(in outbound: FilePath) throws(SpoolError) -> [String] {
        var peers: [String] = []
        for name in try FileOps.list(outbound) {
            let directory = outbound.appending(name)
            guard FileOps.isDirectory(directory) else { continue }
            if let fd = try? FileOps.openForReading(directory.appending("peer-id")),
               let bytes = try? fd.readBytes(at: 0, count: 256) {
                try? fd.close()
                if let peer = String(validating: bytes, as: UTF8.self), !peer.isEmpty { peers.append(peer); continue }
            }
            if let peer = PeerDirectoryName.decode(name) { peers.append(peer) }
        }
        return peers
    }

    /// Closes every log and the inbound store (finishing queued work) and releases the
    /// lock. Blocks until done; idempotent. Logs obtained from this directory fail every
    /// call afterwards with ``SpoolError/Code/closed``.
    package func close() {
        let wasClosed = closed.withLock { closed -> Bool in
            defer { closed = true }
            return closed
        }
        if wasClosed { return }
        for log in logs.withLock({ Array($0.values) }) { log.close() }
        inbound.close()
        lock.release()
    }

    deinit { close() }

    /// Runs blocking work on a fresh spool thread and returns its result.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws(SpoolError) -> T) async throws(SpoolError) -> T {
        try await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, SpoolError>, Never>) in
            do throws(OSThread.StartError) {
                try OSThread.detached(name: "spool-open") {
                    do throws(SpoolError) { continuation.resume(returning: .success(try work())) } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            } catch {
                continuation.resume(returning: .failure(.threadStart(error, doing: "opening the data directory")))
            }
        }.get()
    }
}
