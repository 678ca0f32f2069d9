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

    /// Damaged bytes with valid records after them: skipped, and the scan goes on.
    struct DamagedBytes: Equatable {
        var offset: Int64
        var end: Int64
        var reason: String
        var length: Int64 { end - offset }
    }

    /// Copies a damaged range into `quarantine/` (synced, directory synced) and returns the
    /// report, unless an earlier open already did (the quarantine file holds exactly these
    /// bytes): then `nil`. The file itself is not changed; every open skips the range again.
    private static func quarantine(
        _ range: DamagedBytes, of bytes: [UInt8], path: FilePath, peer: String?
    ) throws -> CorruptionReport? {
        let target = Quarantine.path(for: path, offset: range.offset)
        let damaged = bytes[Int(range.offset)..<Int(range.end)]
        if Quarantine.holds(target, exactly: damaged) { return nil }
        try FileOps.makeDirectory(Quarantine.directory(for: path))
        try FileOps.writeAtomically(Array(damaged), to: target)
        return CorruptionReport(peer: peer, path: path, offset: range.offset, reason: "\(range.reason); damaged bytes \(range.offset)..<\(range.end); the records after them are intact", quarantinedTo: target, length: range.length)
    }

    struct Scan {
        var entries: [Entry] = []
        var end: Int64 = Int64(FileHeader.size)
        /// Damaged records followed by valid ones, in file order (see ``resumeAfterDamage``).
        var damaged: [DamagedBytes] = []
        var failure: SegmentScanner.Failure?
    }

    /// Verifies every record of a whole file's bytes. A damaged record whose declared length
    /// leads to a valid record is a damaged range: skipped, and the scan goes on. Damage
    /// followed by nothing valid, or by zeros only, is a torn tail (when `tolerateTornTail`);
    /// anything else is corruption that ends the scan.
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
                    if let resume = resumeAfterDamage(raw, at: offset, kind: kind, maxRecordSize: maxRecordSize) {
                        scan.damaged.append(DamagedBytes(offset: Int64(offset), end: Int64(resume), reason: reason))
                        offset = resume
                        continue
                    }
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

    /// Where valid records start again after the damaged record at `offset`, following
    /// declared lengths only: the damaged record's header must still look right (a length
    /// within the limits and within the file, reserved byte 0, a type this file holds), and
    /// so must that of any further damaged record stepped over; the first whole record there
    /// whose checksum verifies (and whose type this file holds) is the place. `nil` when the
    /// chain reaches the end of the file or anything implausible: the damage is then
    /// treated as before, up to the end of the file. No byte-by-byte search: a record
    /// encoded inside a payload is never taken for a real one.
    private static func resumeAfterDamage(_ raw: UnsafeRawBufferPointer, at offset: Int, kind: FileHeader.Kind, maxRecordSize: Int) -> Int? {
        let types = recordTypes(kind)
        var at = offset
        while at + RecordFormat.headerSize <= raw.count {
            let length = Int(raw.u32(at: at))
            guard length >= RecordFormat.headerSize, length <= maxRecordSize, at + length <= raw.count,
                  raw[at + 9] == 0, types.contains(raw[at + 8]) else { return nil }
            let next = at + length
            switch RecordFormat.decode(raw, at: next, maxLength: maxRecordSize) {
            case .record(let header):
                return types.contains(header.type) ? next : nil
            case .invalid:
                at = next  // another damaged record; the loop checks its header
            case .incomplete:
                return nil
            }
        }
        return nil
    }

    /// The record types a file of `kind` holds.
    private static func recordTypes(_ kind: FileHeader.Kind) -> Set<UInt8> {
        switch kind {
        case .segment: [RecordFormat.RecordType.message.rawValue]
        case .deadLetters: [RecordFormat.RecordType.deadLetter.rawValue, RecordFormat.RecordType.deadLetterRemoval.rawValue]
        case .inbound: [RecordFormat.RecordType.inboundState.rawValue]
        }
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
