import Logging
import SystemPackage

/// Acknowledged segment files kept for reuse as new segments, instead of being deleted.
///
/// A sync of a record appended to a growing file also writes the file's new size and its
/// newly allocated blocks; a sync of a record written over blocks that already exist
/// writes only the data. On the test machine that made the sender's `fdatasync` about 40 %
/// shorter under load (docs/PERFORMANCE-HISTORY.md, item 11), and a reused file is never freed, so
/// it never holds up the disk's syncs the way freeing a deleted one does (item 9).
///
/// When the writer deletes acknowledged segments it renames up to ``capacity`` of them to
/// `spare-<base>.log`; a roll takes one back (``Segment/create(in:streamID:baseSequence:sync:reusing:)``).
/// A spare unused for ``lifetime`` (10 seconds) is deleted (freed by the ``FileReleaser``), so a peer
/// that has gone quiet holds no spare disk for long. Only the writer thread touches a pool.
/// See docs/SPOOL-FORMAT.md, "Spare segments".
struct SparePool {
    struct Spare {
        var path: FilePath
        /// When it became a spare (monotonic nanoseconds).
        var since: Int64
    }

    static let prefix = "spare-"
    static let suffix = ".log"
    /// How long a spare may go unused before it is deleted, unless tests say otherwise.
    static let defaultLifetime: Int64 = 10_000_000_000

    let directory: FilePath
    let capacity: Int
    /// How long a spare may go unused before it is deleted (nanoseconds).
    let lifetime: Int64
    private var spares: [Spare] = []

    init(directory: FilePath, capacity: Int, lifetime: Int64 = defaultLifetime) {
        self.directory = directory
        self.capacity = max(0, capacity)
        self.lifetime = lifetime
    }

    static func isSpare(fileName name: String) -> Bool {
        name.hasPrefix(prefix) && name.hasSuffix(suffix)
    }

    /// Takes in the spares a previous run left: those whose header names `streamID` are
    /// kept (up to ``capacity``); any other is deleted, as a file of another stream must
    /// never be reused. Syncs the directory when it deleted one.
    mutating func load(streamID: UInt64, now: Int64, logger: Logger) throws(SpoolError) {
        var deleted = false
        for name in try FileOps.list(directory).filter(Self.isSpare(fileName:)).sorted() {
            let path = directory.appending(name)
            if spares.count < capacity, Self.header(of: path)?.streamID == streamID {
                spares.append(Spare(path: path, since: now))
                continue
            }
            logger.debug("spool: deleted a spare segment file it will not reuse", metadata: ["file": "\(path)"])
            try FileOps.unlinkFile(path)
            deleted = true
        }
        if deleted { try FileOps.syncDirectory(directory) }
    }

    /// Renames a segment the writer is deleting to a spare name and keeps it, unless the
    /// pool is full or the rename fails (the caller then unlinks it as before). The caller
    /// syncs the directory afterwards, as it does after an unlink.
    mutating func keep(_ segment: Segment, now: Int64) -> Bool {
        guard spares.count < capacity else { return false }
        let path = directory.appending(Self.prefix + Segment.fileName(baseSequence: segment.baseSequence).dropFirst(Segment.prefix.count))
        do {
            try FileOps.renameFile(segment.path, to: path)
        } catch {
            return false
        }
        spares.append(Spare(path: path, since: now))
        return true
    }

    /// The most recently kept spare (its blocks are the likeliest still cached), if any.
    mutating func take() -> FilePath? {
        spares.popLast()?.path
    }

    var count: Int { spares.count }

    /// When the oldest spare expires (monotonic nanoseconds), if there is one.
    var nextExpiry: Int64? {
        spares.first.map { $0.since + lifetime }
    }

    /// Deletes the spares unused for ``lifetime``: unlinks each (directory synced) and hands
    /// it to `releaser`, which frees its blocks a slice at a time.
    mutating func expire(now: Int64, releaser: FileReleaser, logger: Logger) {
        var expired: [Spare] = []
        while let first = spares.first, first.since + lifetime <= now {
            expired.append(spares.removeFirst())
        }
        guard !expired.isEmpty else { return }
        for spare in expired { Self.delete(spare.path, releaser: releaser, logger: logger) }
        try? FileOps.syncDirectory(directory)
    }

    /// Deletes every spare at once, freeing its space before returning (a full disk).
    /// Returns whether there was any.
    mutating func dropAll(logger: Logger) -> Bool {
        guard !spares.isEmpty else { return false }
        for spare in spares {
            do { try FileOps.unlinkFile(spare.path) } catch {
                logger.error("spool: could not delete a spare segment file", metadata: ["file": "\(spare.path)", "error": "\(error)"])
            }
        }
        spares = []
        try? FileOps.syncDirectory(directory)
        return true
    }

    private static func delete(_ path: FilePath, releaser: FileReleaser, logger: Logger) {
        let fd = try? FileOps.openForWriting(path, create: false)
        do { try FileOps.unlinkFile(path) } catch {
            logger.error("spool: could not delete an unused spare segment file", metadata: ["file": "\(path)", "error": "\(error)"])
            try? fd?.close()
            return
        }
        guard let fd else { return }
        do throws(SpoolError) { try releaser.release(unlinkedFile: fd) } catch {
            logger.error("spool: an unused spare segment file was freed on the writer's thread", metadata: ["file": "\(path)", "error": "\(error)"])
        }
    }

    private static func header(of path: FilePath) -> FileHeader? {
        guard let fd = try? FileOps.openForReading(path) else { return nil }
        defer { try? fd.close() }
        guard let bytes = try? fd.readBytes(at: 0, count: FileHeader.size) else { return nil }
        return try? bytes.withUnsafeBytes { FileHeader.decode($0, kind: .segment) }.get()
    }
}
