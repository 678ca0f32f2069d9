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

    let path: FilePath
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

    /// Opens (creating if missing) and recovers the file.
    static func open(
        path: FilePath, kind: FileHeader.Kind, peer: String?, quarantineDirectory: FilePath, maxRecordSize: Int
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
                    try FileOps.makeDirectory(quarantineDirectory)
                    let name = path.lastComponent?.string ?? "file"
                    let target = quarantineDirectory.appending("\(name).at-\(failure.offset).quarantined")
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

    struct Scan {
        var entries: [Entry] = []
        var end: Int64 = Int64(FileHeader.size)
        var failure: SegmentScanner.Failure?
    }

    /// Verifies every record of a whole file's bytes. Damage followed by nothing valid, or
    /// by zeros only, is a torn tail (when `tolerateTornTail`); anything else is corruption.
    static func scanRecords(_ bytes: [UInt8], kind: FileHeader.Kind, maxRecordSize: Int, tolerateTornTail: Bool) -> Scan {
        var scan = Scan()
        bytes.withUnsafeBytes { raw in
            if case .failure(let error) = FileHeader.decode(raw, kind: kind) {
                scan.failure = SegmentScanner.Failure(kind: .corrupt, offset: 0, reason: "file header: \(error)")
                if raw.count < FileHeader.size && tolerateTornTail {
                    scan.failure?.kind = .tornTail
                }
                return
            }
            var offset = FileHeader.size
            while offset < raw.count {
                switch RecordFormat.decode(raw, at: offset, maxLength: maxRecordSize) {
                case .record(let header):
                    scan.entries.append(Entry(header: header, offset: Int64(offset), body: RecordFormat.body(raw, at: offset, length: header.length)))
                    offset += header.length
                case .incomplete:
                    let laterValid = validRecordExists(raw, after: offset, maxRecordSize: maxRecordSize)
                    scan.failure = SegmentScanner.Failure(kind: tolerateTornTail && !laterValid ? .tornTail : .corrupt, offset: Int64(offset), reason: "partial record")
                    scan.end = Int64(offset)
                    return
                case .invalid(let reason):
                    let zeros = raw[offset...].allSatisfy { $0 == 0 }
                    scan.failure = SegmentScanner.Failure(kind: tolerateTornTail && zeros ? .tornTail : .corrupt, offset: Int64(offset), reason: reason)
                    scan.end = Int64(offset)
                    return
                }
            }
            scan.end = Int64(offset)
        }
        return scan
    }

    private static func validRecordExists(_ raw: UnsafeRawBufferPointer, after offset: Int, maxRecordSize: Int) -> Bool {
        var probe = offset + 1
        while probe + RecordFormat.headerSize <= raw.count {
            if case .record = RecordFormat.decode(raw, at: probe, maxLength: maxRecordSize) { return true }
            probe += 1
        }
        return false
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
