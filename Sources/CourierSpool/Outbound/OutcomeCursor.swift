import CourierChecksum
import SystemPackage

/// How far the application has consumed the outcomes of one peer's stream: the durable
/// cursor behind `Node.outcomes(for:)`, kept in `outcomes.cursor` in the peer's directory
/// (see docs/SPOOL-FORMAT.md, "outcomes.cursor").
///
/// One 48-byte checksummed record, replaced whole: written to `outcomes.cursor.tmp`,
/// `fdatasync`ed, renamed over the old file, and the directory `fsync`ed, so the file is
/// always absent, the old value, or the new one. The cursor belongs to one stream: a cursor
/// of another stream (the spool was wiped and the log started a new one) counts for
/// nothing. Every function here blocks on the file system: call them from a thread that may
/// block, never from the cooperative pool and never from the node's I/O thread.
package struct OutcomeCursor: Equatable, Sendable {
    /// The file's name in the peer's directory.
    package static let fileName = "outcomes.cursor"
    static let size = 48
    static let magic: [UInt8] = Array("CSPLOCUR".utf8)
    static let version: UInt16 = 1

    /// The stream the cursor belongs to.
    package var streamID: UInt64
    /// Every outcome up to and including this sequence number was consumed.
    package var consumedUpTo: UInt64
    /// When the cursor was written (nanoseconds since the Unix epoch).
    package var writtenAt: Int64

    package init(streamID: UInt64, consumedUpTo: UInt64, writtenAt: Int64 = wallClockNanoseconds()) {
        self.streamID = streamID
        self.consumedUpTo = consumedUpTo
        self.writtenAt = writtenAt
    }

    /// What reading the file found.
    package enum Found: Equatable, Sendable {
        /// No cursor file: nothing was consumed yet.
        case missing
        /// A valid cursor (of whatever stream: compare ``OutcomeCursor/streamID``).
        case cursor(OutcomeCursor)
        /// The file is damaged or of an unknown version: `reason` says how. Its bytes were
        /// moved to `quarantinedTo` when that worked (the next write then starts afresh).
        case damaged(reason: String, path: FilePath, quarantinedTo: FilePath?)
    }

    /// The file's 48 bytes.
    package func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        writer.append(Self.magic)
        writer.u16(Self.version)
        writer.u16(UInt16(Self.size))
        writer.u32(0)
        writer.u64(streamID)
        writer.u64(consumedUpTo)
        writer.i64(writtenAt)
        writer.u32(0)
        let crc = writer.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        writer.u32(crc)
        return writer.bytes
    }

    /// The cursor in `bytes`, or why they are not one.
    package static func decode(_ bytes: [UInt8]) -> Result<OutcomeCursor, DecodeFailure> {
        bytes.withUnsafeBytes { raw in
            guard raw.count == size else {
                return .failure(DecodeFailure(reason: "\(raw.count) bytes instead of \(size)"))
            }
            guard Array(raw[0..<8]) == magic else { return .failure(DecodeFailure(reason: "bad magic")) }
            guard raw.u16(at: 8) == version, raw.u16(at: 10) == UInt16(size) else {
                return .failure(DecodeFailure(reason: "unknown version \(raw.u16(at: 8)) or length \(raw.u16(at: 10))"))
            }
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<44])) == raw.u32(at: 44) else {
                return .failure(DecodeFailure(reason: "checksum mismatch"))
            }
            guard raw.u32(at: 12) == 0, raw.u32(at: 40) == 0 else {
                return .failure(DecodeFailure(reason: "nonzero reserved bytes"))
            }
            return .success(OutcomeCursor(streamID: raw.u64(at: 16), consumedUpTo: raw.u64(at: 24), writtenAt: raw.i64(at: 32)))
        }
    }

    /// Why bytes are not a cursor.
    package struct DecodeFailure: Error {
        package var reason: String
    }

    /// Reads the cursor in the peer directory `directory`. A damaged file is moved to
    /// `quarantine/outcomes.cursor.at-0.quarantined` (replacing an older one there) so that
    /// it is reported once; a file that cannot be read at all throws.
    package static func read(in directory: FilePath) throws(SpoolError) -> Found {
        let path = directory.appending(fileName)
        guard let fd = try FileOps.openForReading(path) else { return .missing }
        let bytes: [UInt8]
        do {
            defer { try? fd.close() }
            // One byte more than a cursor, to tell a longer file from a valid one.
            bytes = try fd.readBytes(at: 0, count: size + 1)
        } catch {
            throw SpoolError.system("pread", error, path: path, doing: "reading the outcome cursor")
        }
        switch decode(bytes) {
        case .success(let cursor):
            return .cursor(cursor)
        case .failure(let failure):
            let target = Quarantine.path(for: path, offset: 0)
            let moved: FilePath? = {
                do throws(SpoolError) {
                    try FileOps.makeDirectory(Quarantine.directory(for: path))
                    try FileOps.renameFile(path, to: target)
                    try FileOps.syncDirectory(directory)
                    return target
                } catch {
                    return nil
                }
            }()
            return .damaged(reason: failure.reason, path: path, quarantinedTo: moved)
        }
    }

    /// Replaces the cursor file in the peer directory `directory` with `cursor`, atomically
    /// and durably (temporary file, `fdatasync`, `rename`, directory `fsync`).
    package static func write(_ cursor: OutcomeCursor, in directory: FilePath) throws(SpoolError) {
        try FileOps.writeAtomically(cursor.encoded(), to: directory.appending(fileName))
    }
}
