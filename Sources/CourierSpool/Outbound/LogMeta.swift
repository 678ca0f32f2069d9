import CourierChecksum
import SystemPackage

/// The crash-safe state of one outbound log, kept in `log.meta` as two checksummed slots
/// (see docs/SPOOL-FORMAT.md, "log.meta"). Writes alternate between the slots; a torn write
/// can only damage the slot being written, and the other still holds the previous value.
struct LogMeta: Equatable {
    static let slotSize = 64
    static let magic: [UInt8] = Array("CSPLMETA".utf8)

    var generation: UInt64
    var streamID: UInt64
    /// Every sequence number up to and including this one is acknowledged.
    var acknowledgedUpTo: UInt64
    /// No sequence number above this one has ever been handed out (a high-water reservation).
    var reservedUpTo: UInt64
    var writtenAt: Int64

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.slotSize)
        writer.append(Self.magic)
        writer.u16(1)
        writer.u16(UInt16(Self.slotSize))
        writer.u32(0)
        writer.u64(generation)
        writer.u64(streamID)
        writer.u64(acknowledgedUpTo)
        writer.u64(reservedUpTo)
        writer.i64(writtenAt)
        writer.u32(0)
        let crc = writer.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        writer.u32(crc)
        return writer.bytes
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) -> LogMeta? {
        guard bytes.count >= slotSize,
              Array(bytes[0..<8]) == magic,
              bytes.u16(at: 8) == 1,
              bytes.u16(at: 10) == UInt16(slotSize),
              CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60])) == bytes.u32(at: 60)
        else { return nil }
        return LogMeta(
            generation: bytes.u64(at: 16),
            streamID: bytes.u64(at: 24),
            acknowledgedUpTo: bytes.u64(at: 32),
            reservedUpTo: bytes.u64(at: 40),
            writtenAt: bytes.i64(at: 48)
        )
    }

    /// Reads both slots and returns the valid one with the higher generation, and how many
    /// slots were damaged (a damaged slot next to a valid one is the normal trace of a torn
    /// write and is not corruption).
    static func read(from bytes: [UInt8]) -> (meta: LogMeta?, damagedSlots: Int) {
        bytes.withUnsafeBytes { raw in
            var best: LogMeta?
            var damaged = 0
            for slot in 0..<2 {
                let start = slot * slotSize
                guard raw.count >= start + slotSize else { damaged += 1; continue }
                if let meta = decode(UnsafeRawBufferPointer(rebasing: raw[start..<(start + slotSize)])) {
                    if best == nil || meta.generation > best!.generation { best = meta }
                } else {
                    damaged += 1
                }
            }
            return (best, damaged)
        }
    }
}

/// The open `log.meta` file of a writable log.
final class LogMetaFile {
    let path: FilePath
    private let fd: FileDescriptor
    private(set) var current: LogMeta
    /// Whether the last write has not been synced yet.
    private(set) var unsynced = false

    private init(path: FilePath, fd: FileDescriptor, current: LogMeta) {
        self.path = path
        self.fd = fd
        self.current = current
    }

    deinit { try? fd.close() }

    /// Creates a new meta file for a new stream (atomically: temporary file and rename).
    static func create(at path: FilePath, streamID: UInt64) throws(SpoolError) -> LogMetaFile {
        let meta = LogMeta(generation: 1, streamID: streamID, acknowledgedUpTo: 0, reservedUpTo: 0, writtenAt: wallClockNanoseconds())
        try FileOps.writeAtomically(meta.encoded() + [UInt8](repeating: 0, count: LogMeta.slotSize), to: path)
        let fd = try FileOps.openForWriting(path, create: false)
        return LogMetaFile(path: path, fd: fd, current: meta)
    }

    /// Opens an existing meta file; `meta` is the value recovery settled on.
    static func open(at path: FilePath, meta: LogMeta) throws(SpoolError) -> LogMetaFile {
        let fd = try FileOps.openForWriting(path, create: false)
        return LogMetaFile(path: path, fd: fd, current: meta)
    }

    /// Writes a new value into the older slot; datasyncs if `sync`.
    func write(acknowledgedUpTo: UInt64, reservedUpTo: UInt64, sync: Bool) throws(SpoolError) {
        var next = current
        next.generation += 1
        next.acknowledgedUpTo = acknowledgedUpTo
        next.reservedUpTo = reservedUpTo
        next.writtenAt = wallClockNanoseconds()
        let offset = Int64(next.generation % 2) * Int64(LogMeta.slotSize)
        do {
            _ = try fd.writeAll(toAbsoluteOffset: offset, next.encoded())
        } catch {
            throw SpoolError.from(error, call: "pwrite", path: path, doing: "writing the acknowledged mark")
        }
        current = next
        unsynced = true
        if sync { try syncIfNeeded() }
    }

    /// Syncs the last write if it was made without a sync (a segment is about to be deleted
    /// on the strength of the mark it holds).
    func syncIfNeeded() throws(SpoolError) {
        guard unsynced else { return }
        do { try fd.datasync() } catch {
            throw SpoolError.system("fdatasync", error, path: path, doing: "syncing the acknowledged mark")
        }
        unsynced = false
    }
}
