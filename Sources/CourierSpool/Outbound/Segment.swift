import SystemPackage

/// An open segment file. Readers take a reference under the log's lock and read outside
/// it; the descriptor closes when the last reference goes, so a segment deleted while a
/// read is in flight is still read safely (the file lives on until then).
final class Segment: Sendable {
    let baseSequence: UInt64
    let path: FilePath
    let fd: FileDescriptor
    /// The file's format version. Appends to a version-2 segment end with the end marker
    /// (``RecordFormat/endMarker``); a version-1 segment (an older release's) gets none.
    let version: UInt16

    init(baseSequence: UInt64, path: FilePath, fd: FileDescriptor, version: UInt16 = FileHeader.Kind.segment.version) {
        self.baseSequence = baseSequence
        self.path = path
        self.fd = fd
        self.version = version
    }

    deinit { try? fd.close() }

    static let prefix = "seg-"
    static let suffix = ".log"

    /// `seg-<base sequence, 20 decimal digits>.log`, so names sort in sequence order.
    static func fileName(baseSequence: UInt64) -> String {
        let digits = String(baseSequence)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The header of a new segment.
    private static func header(streamID: UInt64, base: UInt64) -> [UInt8] {
        FileHeader(kind: .segment, streamID: streamID, baseSequence: base, createdAt: wallClockNanoseconds()).encoded()
    }

    /// Creates `seg-<base>.log` in `directory` with its header written (and synced if
    /// `sync`), then syncs the directory; removes the file again on failure.
    ///
    /// With `spare` (a ``SparePool`` file), the new segment reuses that file instead: the
    /// header and the end marker after it are written over its start and synced first, then
    /// it is renamed into place, so a crash leaves either a spare or a valid empty segment.
    /// The stale bytes after the marker are never read as records (docs/SPOOL-FORMAT.md).
    /// If reusing fails the spare is deleted and a new file created.
    static func create(in directory: FilePath, streamID: UInt64, baseSequence base: UInt64, sync: Bool, reusing spare: FilePath? = nil) throws(SpoolError) -> Segment {
        let path = directory.appending(fileName(baseSequence: base))
        if let spare, let reused = reuse(spare, as: path, in: directory, streamID: streamID, base: base, sync: sync) {
            return reused
        }
        let fd = try FileOps.openForWriting(path, create: true)
        do {
            try fd.resize(to: 0)
            _ = try fd.writeAll(toAbsoluteOffset: 0, header(streamID: streamID, base: base))
            if sync { try fd.datasync() }
        } catch {
            try? fd.close()
            try? FileOps.unlinkFile(path)
            throw SpoolError.from(error, call: "write", path: path, doing: "creating a segment")
        }
        do {
            try FileOps.syncDirectory(directory)
        } catch {
            try? fd.close()
            try? FileOps.unlinkFile(path)
            throw error
        }
        return Segment(baseSequence: base, path: path, fd: fd)
    }

    private static func reuse(_ spare: FilePath, as path: FilePath, in directory: FilePath, streamID: UInt64, base: UInt64, sync: Bool) -> Segment? {
        guard let fd = try? FileOps.openForWriting(spare, create: false) else {
            try? FileOps.unlinkFile(spare)
            return nil
        }
        do {
            _ = try fd.writeAll(toAbsoluteOffset: 0, header(streamID: streamID, base: base) + RecordFormat.endMarker)
            if sync { try fd.datasync() }
            try FileOps.renameFile(spare, to: path)
            try FileOps.syncDirectory(directory)
            return Segment(baseSequence: base, path: path, fd: fd)
        } catch {
            try? fd.close()
            try? FileOps.unlinkFile(spare)
            return nil
        }
    }

    /// The base sequence number in a segment file name, or `nil` if it is not one.
    static func baseSequence(fromFileName name: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }
}

/// The in-memory index of one run of records in a segment file: where each record
/// starts. Four bytes per record.
///
/// A segment normally has one run holding `base, base+1, …`. When recovery found damaged
/// records in the middle of a segment and resynchronised on the next valid record, the
/// file has one run before each quarantined range and one after it (all sharing the same
/// ``Segment``); the sequence numbers inside a range are missing. Runs are kept in
/// sequence order, so the runs of one file are adjacent.
struct SegmentIndex {
    let segment: Segment
    /// The sequence number of the run's first record (the segment's base for its first run).
    let baseSequence: UInt64
    /// Byte offset of each record in the file; record `i` has sequence `baseSequence + i`.
    var offsets: [UInt32]
    /// The end of the run's last good record (for the file's last run, the next append goes here).
    var end: Int64

    init(segment: Segment, baseSequence: UInt64? = nil, offsets: [UInt32], end: Int64) {
        self.segment = segment
        self.baseSequence = baseSequence ?? segment.baseSequence
        self.offsets = offsets
        self.end = end
    }

    var count: Int { offsets.count }
    /// The last sequence number held, or `baseSequence - 1` when empty.
    var lastSequence: UInt64 { baseSequence &+ UInt64(offsets.count) &- 1 }

    func contains(_ sequence: UInt64) -> Bool {
        sequence >= baseSequence && sequence - baseSequence < UInt64(offsets.count)
    }

    func offset(of sequence: UInt64) -> Int64 { Int64(offsets[Int(sequence - baseSequence)]) }

    /// The end offset of the record `sequence`.
    func endOffset(of sequence: UInt64) -> Int64 {
        let index = Int(sequence - baseSequence) + 1
        return index < offsets.count ? Int64(offsets[index]) : end
    }

    /// Bytes taken by records `from...to` (both within this run).
    func bytes(from: UInt64, to: UInt64) -> Int64 {
        endOffset(of: to) - offset(of: from)
    }

    /// The files of runs dropped from the index that no remaining run still uses (the runs of
    /// one file are adjacent, so only the first remaining run can share a file with them).
    static func filesToDelete(_ dropped: [SegmentIndex], keeping first: SegmentIndex?) -> [Segment] {
        var files: [Segment] = []
        for index in dropped where index.segment !== files.last && index.segment !== first?.segment {
            files.append(index.segment)
        }
        return files
    }
}
