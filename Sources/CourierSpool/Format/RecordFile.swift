import SystemPackage

/// A small append-only file of records behind a ``FileHeader``: the dead-letter store and
/// the inbound journal. Read whole on open, verified, repaired (torn tail truncated,
/// damage quarantined); appended to with truncation back to the last good end on failure.
/// Not thread-safe: its owner serialises access.
final class RecordFile {
    struct Entry {
        var header: RecordFormat.Header
        var offset: Int64
        var body: [UInt8]
    }

    struct Opened {
        var file: RecordFile
        var entries: [Entry]
        var events: [SpoolEvent]
    }

    private(set) var path: FilePath
    let kind: FileHeader.Kind
    let fd: FileDescriptor
    private(set) var end: Int64
    private var needsRepair = false

    private init(path: FilePath, kind: FileHeader.Kind, fd: FileDescriptor, end: Int64) {
        self.path = path
        self.kind = kind
        self.fd = fd
        self.end = end
    }

    deinit { try? fd.close() }

    /// Records that the file was renamed to `path` (its descriptor is unchanged).
    func renamed(to path: FilePath) { self.path = path }

    /// Opens (creating if missing) and recovers the file.
    static func open(
        path: FilePath, kind: FileHeader.Kind, peer: String?, maxRecordSize: Int
    ) throws(SpoolError) -> Opened {
        var directory = path
        directory.removeLastComponent()
        let existed = FileOps.exists(path)
        let fd = try FileOps.openForWriting(path, create: true)
        do {
            let size = try fd.fileSize()
            if !existed || size == 0 {
                try fd.resize(to: 0)
                let header = FileHeader(kind: kind, streamID: 0, baseSequence: 0, createdAt: wallClockNanoseconds())
                _ = try fd.writeAll(toAbsoluteOffset: 0, header.encoded())
                try fd.datasync()
                try FileOps.syncDirectory(directory)
                return Opened(file: RecordFile(path: path, kind: kind, fd: fd, end: Int64(FileHeader.size)), entries: [], events: [])
            }
            let bytes = try fd.readBytes(at: 0, count: Int(size))
            let scan = scanRecords(bytes, kind: kind, maxRecordSize: maxRecordSize, tolerateTornTail: true)
            var events: [SpoolEvent] = []
            for range in scan.damaged {
                if let report = try quarantine(range, of: bytes, path: path, peer: peer) {
                    events.append(.corruptionFound(report))
                }
            }
            if let failure = scan.failure {
                if failure.kind == .tornTail {
                    if failure.offset < Int64(FileHeader.size) {
                        // Cut short before its header was whole: start the file afresh.
                        try fd.resize(to: 0)
                        let header = FileHeader(kind: kind, streamID: 0, baseSequence: 0, createdAt: wallClockNanoseconds())
                        _ = try fd.writeAll(toAbsoluteOffset: 0, header.encoded())
                    } else {
                        try fd.resize(to: failure.offset)
                    }
                    try fd.datasync()
                    events.append(.tornTailTruncated(path: path, offset: failure.offset, bytes: size - failure.offset))
                } else {
                    try FileOps.makeDirectory(Quarantine.directory(for: path))
                    let target = Quarantine.path(for: path, offset: failure.offset)
                    try FileOps.writeAtomically(Array(bytes[Int(failure.offset)...]), to: target)
                    if failure.offset < Int64(FileHeader.size) {
                        // The header itself is damaged: start the file afresh.
                        try fd.resize(to: 0)
                        let header = FileHeader(kind: kind, streamID: 0, baseSequence: 0, createdAt: wallClockNanoseconds())
                        _ = try fd.writeAll(toAbsoluteOffset: 0, header.encoded())
                    } else {
                        try fd.resize(to: failure.offset)
                    }
                    try fd.datasync()
                    events.append(.corruptionFound(CorruptionReport(peer: peer, path: path, offset: failure.offset, reason: failure.reason, quarantinedTo: target)))
                }
            }
            let end = try fd.fileSize()
            return Opened(file: RecordFile(path: path, kind: kind, fd: fd, end: end), entries: scan.entries, events: events)
        } catch {
            try? fd.close()
            throw SpoolError.from(error, call: "open/read", path: path, doing: "opening \(path.lastComponent?.string ?? "a spool file")")
        }
    }

    /// Copies a damaged range into `quarantine/` (synced, directory synced) and returns the
    /// report, unless an earlier open already did (the quarantine file holds exactly these
    /// bytes): then `nil`. The file itself is not changed; every open skips the range again.
    private static func quarantine(
        _ range: RecordScanner.DamagedRange, of bytes: [UInt8], path: FilePath, peer: String?
    ) throws -> CorruptionReport? {
        let target = Quarantine.path(for: path, offset: range.offset)
        let damaged = bytes[Int(range.offset)..<Int(range.end)]
        if Quarantine.holds(target, exactly: damaged) { return nil }
        try FileOps.makeDirectory(Quarantine.directory(for: path))
        try FileOps.writeAtomically(Array(damaged), to: target)
        return CorruptionReport(peer: peer, path: path, offset: range.offset, reason: range.summary, quarantinedTo: target, length: range.length)
    }

    struct Scan {
        var entries: [Entry] = []
        var end: Int64 = Int64(FileHeader.size)
        /// Damaged records followed by good ones, in file order: skipped, and the scan goes on.
        var damaged: [RecordScanner.DamagedRange] = []
        var failure: RecordScanner.Failure?
    }

    /// Verifies every record of a whole file's bytes with the one ``RecordScanner`` (and its
    /// one resynchronisation rule): damage with good records after it is a damaged range,
    /// skipped; damage with nothing good after it is a torn tail (when `tolerateTornTail`)
    /// or corruption, and ends the scan.
    static func scanRecords(_ bytes: [UInt8], kind: FileHeader.Kind, maxRecordSize: Int, tolerateTornTail: Bool) -> Scan {
        let scanner = RecordScanner(file: kind, maxRecordSize: maxRecordSize, tolerateTornTail: tolerateTornTail)
        var scan = Scan()
        do {
            let result = try scanner.scan(RecordBytes(bytes: bytes)) { header, offset, raw in
                scan.entries.append(Entry(header: header, offset: offset, body: RecordFormat.body(raw, at: 0, length: header.length)))
            }
            scan.end = result.end
            scan.damaged = result.damaged
            scan.failure = result.failure
        } catch {
            // Bytes in memory cannot fail to read; say so rather than guess.
            scan.failure = RecordScanner.Failure(kind: .corrupt, offset: 0, reason: "internal: reading bytes in memory failed: \(error)")
        }
        return scan
    }

    /// Appends encoded records; on failure truncates back so nothing partial stays.
    @discardableResult
    func append(_ bytes: [UInt8], sync: Bool) throws(SpoolError) -> Int64 {
        if needsRepair {
            do { try fd.resize(to: end) } catch {
                throw SpoolError.from(error, call: "ftruncate", path: path, doing: "removing a failed append")
            }
            needsRepair = false
        }
        let offset = end
        do {
            _ = try fd.writeAll(toAbsoluteOffset: offset, bytes)
            if sync { try fd.datasync() }
        } catch {
            needsRepair = true
            try? fd.resize(to: end)
            if (try? fd.fileSize()) == end { needsRepair = false }
            throw SpoolError.from(error, call: "pwrite/fdatasync", path: path, doing: "appending to \(path.lastComponent?.string ?? "the file")")
        }
        end += Int64(bytes.count)
        return offset
    }

    func sync() throws(SpoolError) {
        do { try fd.datasync() } catch {
            throw SpoolError.system("fdatasync", error, path: path, doing: "syncing")
        }
    }

    func read(at offset: Int64, count: Int) throws(SpoolError) -> [UInt8] {
        do { return try fd.readBytes(at: offset, count: count) } catch {
            throw SpoolError.system("pread", error, path: path, doing: "reading")
        }
    }
}
