import CourierChecksum
import Logging
import SystemPackage

/// How often the numbers of one outbound stream were sent, as the node last recorded it, so
/// that a restarted node goes on counting attempts where the previous run left off
/// (docs/SPOOL-FORMAT.md, "attempts.log"). Only what a restart needs: a mark below which
/// every number went at least once, and the numbers that went more than once.
package struct SentAttempts: Sendable, Equatable {
    /// Every number up to this one was sent at least once (or finished).
    package var sentUpTo: UInt64
    /// Numbers at or below ``sentUpTo`` sent more than once, with how often (each ≥ 2).
    package var repeated: [UInt64: UInt32]

    package init(sentUpTo: UInt64 = 0, repeated: [UInt64: UInt32] = [:]) {
        self.sentUpTo = sentUpTo
        self.repeated = repeated.filter { $0.key <= sentUpTo && $0.value >= 2 }
    }

    /// Nothing recorded: every count starts at 0 (a new stream, or a spool from before
    /// attempts were recorded).
    package static let none = SentAttempts()

    /// How often `sequence` was sent.
    package func attempts(of sequence: UInt64) -> UInt32 {
        sequence > sentUpTo ? 0 : repeated[sequence] ?? 1
    }

    // MARK: Encoding (one snapshot record of attempts.log)

    static let magic: [UInt8] = Array("CSPLATT".utf8) + [0]
    static let version: UInt16 = 1
    static let headerSize = 40
    static let entrySize = 12
    /// A record longer than this is damage, never a snapshot (a window of a million
    /// retransmitted numbers is 12 MB).
    static let maxRecordSize = 64 << 20

    /// The snapshot as one record: header, entries in ascending order, CRC-32C.
    func encoded(streamID: UInt64) -> [UInt8] {
        let entries = repeated.filter { $0.key <= sentUpTo && $0.value >= 2 }.sorted { $0.key < $1.key }
        var writer = ByteWriter(capacity: Self.headerSize + entries.count * Self.entrySize + 4)
        writer.append(Self.magic)
        writer.u16(Self.version)
        writer.u16(0)
        writer.u32(UInt32(Self.headerSize + entries.count * Self.entrySize + 4))
        writer.u64(streamID)
        writer.u64(sentUpTo)
        writer.u32(UInt32(entries.count))
        writer.u32(0)
        for (sequence, attempts) in entries {
            writer.u64(sequence)
            writer.u32(attempts)
        }
        let crc = writer.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        writer.u32(crc)
        return writer.bytes
    }

    /// What a read of `attempts.log` found.
    package struct Scan: Sendable, Equatable {
        /// The last valid snapshot of the stream asked for (nil: none).
        package var latest: SentAttempts?
        /// Valid snapshot records, and where the valid ones end.
        package var records: Int
        package var validEnd: Int
        /// Why the bytes after `validEnd` were not read (nil: the file ends there).
        package var stoppedBecause: String?
    }

    /// Reads snapshot records from the start of `bytes` up to the first one that does not
    /// verify; the last valid one of stream `streamID` (any stream when nil) wins.
    package static func scan(_ bytes: [UInt8], streamID: UInt64?) -> Scan {
        var scan = Scan(latest: nil, records: 0, validEnd: 0, stoppedBecause: nil)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                guard raw.count - offset >= headerSize + 4 else {
                    scan.stoppedBecause = "a partial record (\(raw.count - offset) bytes)"
                    return
                }
                let record = UnsafeRawBufferPointer(rebasing: raw[offset...])
                let length = Int(record.u32(at: 12))
                let count = Int(record.u32(at: 32))
                guard Array(record[0..<8]) == magic, record.u16(at: 8) == version, record.u16(at: 10) == 0,
                      record.u32(at: 36) == 0, length <= maxRecordSize,
                      length == headerSize + count * entrySize + 4 else {
                    scan.stoppedBecause = "not an attempts record at byte \(offset)"
                    return
                }
                guard length <= record.count else {
                    scan.stoppedBecause = "a partial record at byte \(offset)"
                    return
                }
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[0..<(length - 4)])) == record.u32(at: length - 4) else {
                    scan.stoppedBecause = "checksum mismatch at byte \(offset)"
                    return
                }
                let stream = record.u64(at: 16)
                let sentUpTo = record.u64(at: 24)
                var repeated: [UInt64: UInt32] = [:]
                repeated.reserveCapacity(count)
                for i in 0..<count {
                    let at = headerSize + i * entrySize
                    repeated[record.u64(at: at)] = record.u32(at: at + 8)
                }
                scan.records += 1
                offset += length
                scan.validEnd = offset
                if streamID == nil || stream == streamID {
                    scan.latest = SentAttempts(sentUpTo: sentUpTo, repeated: repeated)
                }
            }
        }
        return scan
    }
}

/// The open `attempts.log` of a writable log. Used only on the log's writer thread. Nothing
/// here is ever synced: the file only has to survive the process (a `kill -9` leaves the page
/// cache to the kernel); a power loss may take the last snapshots with it, which costs
/// attempt counts, never a message (docs/SPOOL-FORMAT.md).
final class AttemptFile {
    static let fileName = "attempts.log"
    /// Past this size the next snapshot starts a new file (written whole, then renamed over).
    static let rewriteThreshold = 256 << 10

    let path: FilePath
    private let streamID: UInt64
    private var fd: FileDescriptor?
    private var end = 0
    /// Snapshots written since the log opened.
    private(set) var written = 0

    init(directory: FilePath, streamID: UInt64) {
        self.path = directory.appending(Self.fileName)
        self.streamID = streamID
    }

    deinit { try? fd?.close() }

    /// The last snapshot recorded for `streamID` in `directory` (``SentAttempts/none`` when
    /// there is no file, or nothing in it verifies: counts then start again at 0).
    static func load(directory: FilePath, streamID: UInt64, logger: Logger, peer: String) -> SentAttempts {
        let path = directory.appending(fileName)
        guard let opened = try? FileOps.openForReading(path) else { return .none }
        defer { try? opened.close() }
        let bytes: [UInt8]
        do {
            let size = try opened.seek(offset: 0, from: .end)
            bytes = try opened.readBytes(at: 0, count: Int(size))
        } catch {
            logger.warning("spool: cannot read the attempt counts; attempts are counted from the acknowledged mark as if new", metadata: [
                "peer": "\(peer)", "file": "\(path)", "error": "\(error)"])
            return .none
        }
        let scan = SentAttempts.scan(bytes, streamID: streamID)
        if let reason = scan.stoppedBecause {
            // A torn last snapshot is the normal trace of a crash during a write.
            logger.debug("spool: attempt counts read up to a damaged or partial record", metadata: [
                "peer": "\(peer)", "file": "\(path)", "reason": "\(reason)", "records": "\(scan.records)"])
        }
        return scan.latest ?? .none
    }

    /// Writes `attempts` as the newest snapshot: appended (one `pwrite`, no sync), or, the
    /// first time in this run and past ``rewriteThreshold``, as a new file renamed over the
    /// old one (so the file never grows without bound, and a run never appends after bytes a
    /// crash left torn).
    func write(_ attempts: SentAttempts) throws(SpoolError) {
        let record = attempts.encoded(streamID: streamID)
        if let fd, end + record.count <= Self.rewriteThreshold {
            do {
                _ = try fd.writeAll(toAbsoluteOffset: Int64(end), record)
            } catch {
                self.fd = nil
                try? fd.close()
                throw SpoolError.from(error, call: "pwrite", path: path, doing: "recording attempt counts")
            }
            end += record.count
            written += 1
            return
        }
        let temporary = FilePath(path.string + ".tmp")
        let fresh: FileDescriptor
        do {
            fresh = try FileDescriptor.open(temporary, .readWrite, options: [.create, .truncate, .closeOnExec],
                                            permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw SpoolError.from(error, call: "open", path: temporary, doing: "recording attempt counts")
        }
        do {
            _ = try fresh.writeAll(toAbsoluteOffset: 0, record)
        } catch {
            try? fresh.close()
            throw SpoolError.from(error, call: "pwrite", path: temporary, doing: "recording attempt counts")
        }
        do {
            try FileOps.renameFile(temporary, to: path)
        } catch {
            try? fresh.close()
            throw error
        }
        try? fd?.close()
        fd = fresh
        end = record.count
        written += 1
    }
}
