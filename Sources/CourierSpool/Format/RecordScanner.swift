import CourierChecksum
import SystemPackage

/// Where a ``RecordScanner`` reads: a file descriptor (segments, read in chunks) or bytes
/// already in memory (the dead-letter store and the inbound journal, read whole).
protocol RecordSource {
    func fileSize() throws(Errno) -> Int64
    func readBytes(at offset: Int64, count: Int) throws(Errno) -> [UInt8]
}

extension FileDescriptor: RecordSource {}

/// A whole file's bytes, read before the scan.
struct RecordBytes: RecordSource {
    var bytes: [UInt8]

    func fileSize() -> Int64 { Int64(bytes.count) }

    func readBytes(at offset: Int64, count: Int) -> [UInt8] {
        let start = Int(clamping: min(max(offset, 0), Int64(bytes.count)))
        return Array(bytes[start..<min(bytes.count, start + max(0, count))])
    }
}

/// The one reader of record files: segments, `deadletters.log` and `inbound.journal`. Reads
/// a file from start to end, verifying every record, without repairing anything. Used by
/// recovery and the record files' open (which then repair) and by the read-only inspector.
///
/// A record is good if it verifies (``RecordFormat/decode(_:at:maxLength:)``: length within
/// limits, reserved byte 0, CRC-32C) and *fits* the file: its type is one the file holds
/// (1 in a segment; 2 or 3 in `deadletters.log`; 4 in `inbound.journal`) and, in a segment,
/// it holds the next sequence number. Damage in the middle of the file does not end the
/// scan: the scanner resynchronises on the next good record by one rule for every file
/// (``resynchronise(_:from:lastGood:fileSize:marked:)``, docs/SPOOL-FORMAT.md "Recovery on
/// open"), reports the damaged byte range and goes on, so the records after it stay
/// readable. Only damage with nothing good after it ends the scan (a torn tail, or
/// corruption up to the end).
struct RecordScanner {
    /// What the file is: a segment of one stream from `expectedBase` on, or a record file.
    enum Layout {
        /// `streamID`: the stream id the segment must carry, if known.
        case segment(streamID: UInt64?, base: UInt64)
        case file(FileHeader.Kind)
    }

    /// How a scan ended early.
    struct Failure: Equatable {
        enum Kind: Equatable {
            /// A partial record at the end of the last segment: a write cut short by a crash.
            case tornTail
            /// A checksum failure or an impossible header: corruption.
            case corrupt
        }
        var kind: Kind
        /// Where the damage starts (the rest of the file from here is unusable).
        var offset: Int64
        var reason: String
        /// Where the damaged bytes end when the end marker follows them (a version-2
        /// segment); `nil`: at the end of the file. Only these bytes are quarantined.
        var end: Int64? = nil
    }

    /// Damaged bytes in the middle of a file, with a good record right after them.
    struct DamagedRange: Equatable {
        /// Where the first damaged record starts.
        var offset: Int64
        /// Where the next valid record starts.
        var end: Int64
        /// What was wrong with the first damaged record.
        var reason: String
        /// The sequence numbers the range held (none of them is readable); `nil` in a file
        /// without sequence numbers.
        var missing: ClosedRange<UInt64>?

        var length: Int64 { end - offset }

        /// ``missing`` for log metadata: `first...last`, or `none`.
        var missingNumbers: String { missing.map { "\($0.lowerBound)...\($0.upperBound)" } ?? "none" }

        /// The range and what it cost, for logs and reports.
        var summary: String {
            guard let missing else {
                return "\(reason); damaged bytes \(offset)..<\(end); the records after them are intact"
            }
            let numbers = missing.count == 1 ? "sequence number \(missing.lowerBound)" : "sequence numbers \(missing.lowerBound)...\(missing.upperBound)"
            return "\(reason); damaged bytes \(offset)..<\(end) (\(length) bytes, \(numbers)); the records after them are intact"
        }
    }

    /// Consecutive good records: `baseSequence, baseSequence+1, …`.
    struct Run {
        var baseSequence: UInt64
        /// Offsets of the records (when the scanner collects them).
        var offsets: [UInt32] = []
        var count = 0
        /// The end of the run's last record.
        var end: Int64
    }

    struct Result {
        var header: FileHeader?
        /// The good records, one run before each damaged range and one after the last. A run
        /// is listed only if it holds records, except the last, which is always listed (it is
        /// where the next append goes).
        var runs: [Run] = []
        /// Damaged ranges with valid records after them, in file order.
        var damaged: [DamagedRange] = []
        /// The end of the last good record.
        var end: Int64 = Int64(FileHeader.size)
        var fileSize: Int64 = 0
        /// Damage with nothing valid after it.
        var failure: Failure?
        var firstEnqueuedAt: Int64?
        var recordCount: Int { runs.reduce(0) { $0 + $1.count } }
    }

    /// Where the scan picks up again after damage (`sequence`: that record's number, in a
    /// segment).
    struct Resync: Equatable {
        var offset: Int64
        var sequence: UInt64
    }

    static let chunkSize = 1 << 20

    var maxRecordSize: Int
    var layout: Layout
    /// Whether this is the newest segment, or a record file read by its owner: the only
    /// files that may end in a torn tail.
    var isLast: Bool
    /// Whether to keep every record's offset (recovery builds the index from them).
    var collectOffsets = true

    /// A scanner of the segment whose records start at `expectedBase`.
    init(maxRecordSize: Int, expectedStreamID: UInt64?, expectedBase: UInt64, isLast: Bool, collectOffsets: Bool = true) {
        self.maxRecordSize = maxRecordSize
        self.layout = .segment(streamID: expectedStreamID, base: expectedBase)
        self.isLast = isLast
        self.collectOffsets = collectOffsets
    }

    /// A scanner of a record file (`deadletters.log`, `inbound.journal`).
    init(file kind: FileHeader.Kind, maxRecordSize: Int, tolerateTornTail: Bool) {
        self.maxRecordSize = maxRecordSize
        self.layout = .file(kind)
        self.isLast = tolerateTornTail
        self.collectOffsets = false
    }

    private var kind: FileHeader.Kind {
        switch layout {
        case .segment: .segment
        case .file(let kind): kind
        }
    }

    /// Whether records carry consecutive sequence numbers (a segment's do).
    private var sequenced: Bool {
        if case .segment = layout { return true }
        return false
    }

    private var expectedBase: UInt64 {
        if case .segment(_, let base) = layout { return base }
        return 1
    }

    /// What the file is called in reasons.
    private var fileName: String {
        switch kind {
        case .segment: "segment"
        case .deadLetters: "dead-letter file"
        case .inbound: "inbound journal"
        }
    }

    /// Whether a file of this kind holds records of `type`.
    private func holds(_ type: UInt8) -> Bool {
        switch kind {
        case .segment: type == RecordFormat.RecordType.message.rawValue
        case .deadLetters: type == RecordFormat.RecordType.deadLetter.rawValue || type == RecordFormat.RecordType.deadLetterRemoval.rawValue
        case .inbound: type == RecordFormat.RecordType.inboundState.rawValue || type == RecordFormat.RecordType.inboundVerdict.rawValue
        }
    }

    /// Whether a record that verifies fits here: a type this file holds and, in a segment,
    /// the sequence number `wanted` (any, when `nil`).
    private func fits(_ header: RecordFormat.Header, wanted: UInt64?) -> Bool {
        holds(header.type) && (!sequenced || wanted == nil || header.sequenceNumber == wanted)
    }

    /// Scans; `visit` sees each good record (header, file offset, the bytes it occupies).
    func scan(
        _ fd: some RecordSource,
        visit: (RecordFormat.Header, Int64, UnsafeRawBufferPointer) -> Void = { _, _, _ in }
    ) throws(Errno) -> Result {
        var result = Result()
        // Whether the records end with the end marker: version-2 segments only.
        var marked = false
        result.fileSize = try fd.fileSize()
        let headerBytes = try fd.readBytes(at: 0, count: FileHeader.size)
        let decodedHeader = headerBytes.withUnsafeBytes { FileHeader.decode($0, kind: kind) }
        switch decodedHeader {
        case .failure(let error):
            let reason: String
            switch error {
            case .tooShort:
                // A file created by a crash before its header was whole.
                if isLast && headerBytes.allSatisfy({ $0 == 0 }) || isLast && headerBytes.count < FileHeader.size {
                    result.failure = Failure(kind: .tornTail, offset: 0, reason: "\(fileName) header incomplete")
                    return result
                }
                reason = "\(fileName) header too short (\(headerBytes.count) bytes)"
            case .badMagic: reason = "bad magic in \(fileName) header"
            case .checksum: reason = "\(fileName) header checksum mismatch"
            case .unsupportedVersion(let v): reason = "unsupported \(fileName) format version \(v)"
            }
            result.failure = Failure(kind: .corrupt, offset: 0, reason: reason)
            return result
        case .success(let header):
            if case .segment(let expectedStreamID, let expectedBase) = layout {
                marked = header.version >= 2
                if header.baseSequence != expectedBase {
                    result.failure = Failure(kind: .corrupt, offset: 0, reason: "segment header says base \(header.baseSequence), file name says \(expectedBase)")
                    return result
                }
                if let expectedStreamID, header.streamID != expectedStreamID {
                    result.failure = Failure(kind: .corrupt, offset: 0, reason: "segment belongs to stream \(hex(header.streamID)), the log is stream \(hex(expectedStreamID))")
                    return result
                }
            }
            result.header = header
        }

        var position = Int64(FileHeader.size)
        var expected = expectedBase
        var run = Run(baseSequence: expectedBase, end: position)
        var wanted = Self.chunkSize
        while position < result.fileSize {
            let requested = min(Int64(wanted), result.fileSize - position).clamped
            let chunk = try fd.readBytes(at: position, count: requested)
            if chunk.isEmpty { break }  // the file shrank underneath us
            wanted = Self.chunkSize
            var consumed = 0
            var stop: Failure?
            var needMore = false
            chunk.withUnsafeBytes { raw in
                while consumed < raw.count {
                    switch RecordFormat.decode(raw, at: consumed, maxLength: maxRecordSize) {
                    case .record(let header):
                        if !fits(header, wanted: expected) {
                            stop = Failure(kind: .corrupt, offset: position + Int64(consumed), reason: holds(header.type)
                                ? "record holds sequence \(header.sequenceNumber), expected \(expected)"
                                : "record type \(header.type) in a \(fileName)")
                            return
                        }
                        if collectOffsets { run.offsets.append(UInt32(truncatingIfNeeded: position + Int64(consumed))) }
                        run.count += 1
                        if result.firstEnqueuedAt == nil { result.firstEnqueuedAt = header.enqueuedAt }
                        visit(header, position + Int64(consumed), UnsafeRawBufferPointer(rebasing: raw[consumed..<(consumed + header.length)]))
                        consumed += header.length
                        expected += 1
                    case .incomplete(let declared):
                        let recordStart = position + Int64(consumed)
                        let needed = Int64(declared ?? RecordFormat.headerSize)
                        if recordStart + needed <= result.fileSize && consumed > 0 {
                            needMore = true  // continues in the next chunk
                            wanted = max(Self.chunkSize, Int(needed))
                        } else if recordStart + needed <= result.fileSize {
                            needMore = true
                            wanted = Int(needed)
                        } else {
                            stop = Failure(kind: .tornTail, offset: recordStart, reason: "partial record at the end of the file")
                        }
                        return
                    case .invalid(let reason):
                        stop = Failure(kind: .corrupt, offset: position + Int64(consumed), reason: reason)
                        return
                    }
                }
            }
            position += Int64(consumed)
            run.end = position
            if var failure = stop {
                if let resync = try resynchronise(fd, from: failure.offset, lastGood: expected &- 1, fileSize: result.fileSize, marked: marked),
                   !sequenced || resync.sequence > expected {
                    result.damaged.append(DamagedRange(
                        offset: failure.offset, end: resync.offset,
                        reason: failure.kind == .tornTail ? "record length runs past the end of the file" : failure.reason,
                        missing: sequenced ? expected...(resync.sequence - 1) : nil
                    ))
                    if run.count > 0 { result.runs.append(run) }
                    if sequenced { expected = resync.sequence }
                    run = Run(baseSequence: expected, end: resync.offset)
                    position = resync.offset
                    continue
                }
                if marked, try isEndMarker(fd, at: failure.offset, fileSize: result.fileSize) {
                    break  // the clean end: the marker after the last record
                }
                if marked && isLast {
                    failure = try classifyAfterRecords(fd, failure: failure, fileSize: result.fileSize)
                } else if failure.kind == .tornTail || isLast {
                    failure = try classify(fd, failure: failure, fileSize: result.fileSize, expected: expected)
                }
                result.failure = failure
                break
            }
            if consumed == 0 && (!needMore || chunk.count < requested) {
                // No progress: the file shrank underneath a reader.
                result.failure = Failure(kind: .tornTail, offset: position, reason: "file shorter than when the scan started")
                break
            }
        }
        result.runs.append(run)
        result.end = position
        return result
    }

    // MARK: Resynchronising

    /// Finds where good records start again after damage at `start`, or `nil` when nothing
    /// good follows it (the damage runs to the end of the file). `lastGood` is the sequence
    /// number of the last good record before the damage (segments only).
    ///
    /// The one resynchronisation rule, for every record file (docs/SPOOL-FORMAT.md,
    /// "Recovery on open"). A record is taken as the place to resume only if it is whole,
    /// verifies its CRC-32C (which covers its header and body) and fits the file: a type the
    /// file holds and, in a segment, a sequence number above `lastGood + 1` (the damaged
    /// bytes held at least that record) and at most one number per 40 bytes of damage (no
    /// record is shorter than its header).
    ///
    /// 1. First it follows the declared lengths: a flipped bit in a body leaves the damaged
    ///    record's length intact, and the record it points to is the next one. Damaged
    ///    records whose headers still look right (a plausible length, a type the file holds,
    ///    in a segment the expected sequence number; only the checksum fails) are stepped
    ///    over whole, so their bodies are never searched for records.
    /// 2. When a length is itself damaged, it searches byte by byte from there. A candidate
    ///    must then also be followed by a good record that fits after it (in a segment, the
    ///    next in sequence), or end exactly at the end of the records, so that a record
    ///    encoded inside a damaged record's payload is not taken for the real one.
    ///
    /// In a version-2 segment (`marked`) the end marker after the last record counts as the
    /// end of the file does here (what follows it is stale).
    func resynchronise(_ fd: some RecordSource, from start: Int64, lastGood: UInt64, fileSize: Int64, marked: Bool = false) throws(Errno) -> Resync? {
        let headerSize = Int64(RecordFormat.headerSize)
        var at = start
        var damagedRecords: UInt64 = 1
        while at + headerSize <= fileSize {
            let header = try fd.readBytes(at: at, count: RecordFormat.headerSize)
            guard header.count == RecordFormat.headerSize else { break }
            let length = Int64(header.withUnsafeBytes { $0.u32(at: 0) })
            guard length >= headerSize, length <= Int64(maxRecordSize), at + length <= fileSize else { break }
            let next = at + length
            // The damaged record reaches the end of the file (or of the records).
            if try isEnd(fd, at: next, fileSize: fileSize, marked: marked) { return nil }
            let wantedSequence = lastGood &+ damagedRecords &+ 1
            switch try probe(fd, at: next, fileSize: fileSize) {
            case .valid(let found) where fits(found, wanted: wantedSequence):
                return Resync(offset: next, sequence: found.sequenceNumber)
            case .damaged(let found) where fits(found, wanted: wantedSequence):
                at = next
                damagedRecords += 1
            default:
                return try search(fd, from: at + 1, damageStart: start, lastGood: lastGood, fileSize: fileSize, marked: marked)
            }
        }
        return try search(fd, from: at + 1, damageStart: start, lastGood: lastGood, fileSize: fileSize, marked: marked)
    }

    private enum Probe {
        /// A whole record of a type the file holds whose checksum verifies.
        case valid(RecordFormat.Header)
        /// A plausible header (length within limits and within the file, a type the file
        /// holds, reserved byte 0) whose record fails its checksum.
        case damaged(RecordFormat.Header)
        case nothing
    }

    /// What starts at `offset`.
    private func probe(_ fd: some RecordSource, at offset: Int64, fileSize: Int64) throws(Errno) -> Probe {
        guard offset + Int64(RecordFormat.headerSize) <= fileSize else { return .nothing }
        let head = try fd.readBytes(at: offset, count: RecordFormat.headerSize)
        guard head.count == RecordFormat.headerSize else { return .nothing }
        let length = Int(head.withUnsafeBytes { $0.u32(at: 0) })
        guard length >= RecordFormat.headerSize, length <= maxRecordSize, offset + Int64(length) <= fileSize,
              holds(head[8]), head[9] == 0
        else { return .nothing }
        let bytes = try fd.readBytes(at: offset, count: length)
        guard bytes.count == length else { return .nothing }
        return bytes.withUnsafeBytes { raw -> Probe in
            switch RecordFormat.decode(raw, at: 0, maxLength: maxRecordSize) {
            case .record(let header): .valid(header)
            default: .damaged(RecordFormat.header(raw, at: 0, length: length))
            }
        }
    }

    /// Step 2 of ``resynchronise(_:from:lastGood:fileSize:marked:)``: every offset from `from` on.
    private func search(_ fd: some RecordSource, from: Int64, damageStart: Int64, lastGood: UInt64, fileSize: Int64, marked: Bool) throws(Errno) -> Resync? {
        let headerSize = RecordFormat.headerSize
        var windowStart = from
        while windowStart + Int64(headerSize) <= fileSize {
            // Windows overlap by a header's length so that every offset is probed whole.
            let window = try fd.readBytes(at: windowStart, count: min(Int64(Self.chunkSize), fileSize - windowStart).clamped)
            if window.count < headerSize { return nil }
            var candidates: [(offset: Int64, sequence: UInt64)] = []
            window.withUnsafeBytes { raw in
                for i in 0...(raw.count - headerSize) {
                    let length = Int(raw.u32(at: i))
                    guard length >= headerSize, length <= maxRecordSize,
                          holds(raw[i + 8]), raw[i + 9] == 0 else { continue }
                    let offset = windowStart + Int64(i)
                    guard offset + Int64(length) <= fileSize else { continue }
                    let sequence = raw.u64(at: i + 16)
                    // At least the record at the damage is missing, and each missing record took
                    // at least a header's worth of the damaged bytes.
                    guard !sequenced || (sequence > lastGood && sequence - lastGood >= 2
                          && sequence - lastGood - 1 <= UInt64(offset - damageStart) / UInt64(headerSize)) else { continue }
                    candidates.append((offset, sequence))
                }
            }
            for candidate in candidates {
                guard case .valid(let header) = try probe(fd, at: candidate.offset, fileSize: fileSize),
                      header.sequenceNumber == candidate.sequence else { continue }
                let next = candidate.offset + Int64(header.length)
                if try isEnd(fd, at: next, fileSize: fileSize, marked: marked) { return Resync(offset: candidate.offset, sequence: candidate.sequence) }
                if case .valid(let following) = try probe(fd, at: next, fileSize: fileSize), fits(following, wanted: candidate.sequence + 1) {
                    return Resync(offset: candidate.offset, sequence: candidate.sequence)
                }
            }
            windowStart += Int64(max(1, window.count - headerSize + 1))
        }
        return nil
    }

    // MARK: The end of the records (version 2)

    /// Whether the bytes at `offset` are the end marker that follows a version-2 segment's
    /// last record: zeros for a record header's length, or up to the end of the file if
    /// that is nearer.
    func isEndMarker(_ fd: some RecordSource, at offset: Int64, fileSize: Int64) throws(Errno) -> Bool {
        let count = Int(min(fileSize - offset, Int64(RecordFormat.endMarker.count)))
        guard count > 0 else { return true }
        let bytes = try fd.readBytes(at: offset, count: count)
        return bytes.count == count && bytes.allSatisfy { $0 == 0 }
    }

    /// Whether `offset` is where the records end: the end of the file, or in a version-2
    /// segment (`marked`) the end marker.
    private func isEnd(_ fd: some RecordSource, at offset: Int64, fileSize: Int64, marked: Bool) throws(Errno) -> Bool {
        if offset == fileSize { return true }
        return marked && offset < fileSize ? try isEndMarker(fd, at: offset, fileSize: fileSize) : false
    }

    /// Decides what failed at the end of the newest segment's records when that segment is
    /// version 2, whose file may be a reused one: the bytes after the last record may be
    /// stale (an earlier use's) rather than the end of the file, so the version-1 rule (a
    /// write cut short runs to the end of the file) cannot apply. A write is only ever cut
    /// short at a page boundary (the kernel copies it into the page cache a page at a time),
    /// and every complete write ends with the end marker. So, with no valid record after
    /// the failure (resynchronisation found none):
    /// - a record whose length field was damaged (it verifies with the length that ends it
    ///   at a later end marker, or at the end of the file): corruption;
    /// - a plausible record header whose record is followed by the end marker was written
    ///   whole and then damaged: corruption;
    /// - one whose record runs past the end of the file, or crosses or starts on a page
    ///   boundary with no marker after it: a write cut short (a torn tail);
    /// - a partial header at the end of the file, or bytes that are no record header at all
    ///   starting exactly on a page boundary: a write cut short there (a torn tail);
    /// - anything else: corruption.
    /// A torn write never completed, so none of its records was acknowledged to its
    /// appender or sent, and truncating it reuses no number a receiver may have seen.
    private func classifyAfterRecords(_ fd: some RecordSource, failure: Failure, fileSize: Int64) throws(Errno) -> Failure {
        let offset = failure.offset
        let page = FileOps.pageSize
        let onBoundary = offset % page == 0
        let headerSize = Int64(RecordFormat.headerSize)
        func torn(_ reason: String) -> Failure { Failure(kind: .tornTail, offset: offset, reason: reason) }
        func corrupt(_ reason: String, end: Int64? = nil) -> Failure { Failure(kind: .corrupt, offset: offset, reason: reason, end: end) }
        let reason = failure.kind == .corrupt ? failure.reason : "record damaged"
        if fileSize - offset < headerSize { return torn("partial record header at the end of the file") }
        if let end = try lengthFieldDamaged(fd, at: offset, fileSize: fileSize) { return corrupt("record length field damaged", end: end) }
        let head = try fd.readBytes(at: offset, count: RecordFormat.headerSize)
        let length = Int64(head.withUnsafeBytes { $0.u32(at: 0) })
        if head.count == RecordFormat.headerSize, length >= headerSize, length <= Int64(maxRecordSize),
           head[8] == RecordFormat.RecordType.message.rawValue, head[9] == 0 {
            let end = offset + length
            if end > fileSize { return torn("partial record at the end of the file") }
            if try isEndMarker(fd, at: end, fileSize: fileSize) { return corrupt(reason + " (a whole record, followed by the end marker)", end: end) }
            if onBoundary || offset / page != (end - 1) / page { return torn("partial record: a write cut short at a page boundary") }
            return corrupt(reason)
        }
        if onBoundary { return torn("a write cut short at a page boundary") }
        // A damaged header (its type or reserved byte): the damage ends where the record its
        // length names ends, if the end marker is there.
        let end = offset + length
        if length >= headerSize, end <= fileSize, try isEndMarker(fd, at: end, fileSize: fileSize) {
            return corrupt(reason, end: end)
        }
        return corrupt(reason)
    }

    /// Where the record at `offset` ends if it is whole but for its length field: some later
    /// end marker (or the end of the file) closes a record that verifies with that length.
    private func lengthFieldDamaged(_ fd: some RecordSource, at offset: Int64, fileSize: Int64) throws(Errno) -> Int64? {
        let markerSize = RecordFormat.endMarker.count
        let window = try fd.readBytes(at: offset, count: Int(min(fileSize - offset, Int64(maxRecordSize + markerSize))))
        return window.withUnsafeBytes { raw -> Int64? in
            guard raw.count >= RecordFormat.headerSize else { return nil }
            let stored = raw.u32(at: 4)
            let body = UnsafeRawBufferPointer(rebasing: raw[8...])
            // Every position followed by a marker's length of zeros is a candidate end.
            var end = RecordFormat.headerSize
            while end <= min(raw.count, maxRecordSize) {
                let closes = end == raw.count
                    || (raw[end] == 0 && (end + markerSize <= raw.count
                        ? UnsafeRawBufferPointer(rebasing: raw[end..<(end + markerSize)]).allSatisfy { $0 == 0 }
                        : UnsafeRawBufferPointer(rebasing: raw[end...]).allSatisfy { $0 == 0 }))
                if closes {
                    var length = UInt32(end).littleEndian
                    let head = withUnsafeBytes(of: &length) { CRC32C.update(0, $0) }
                    if CRC32C.update(head, UnsafeRawBufferPointer(rebasing: body[..<(end - 8)])) == stored { return offset + Int64(end) }
                }
                end += 1
            }
            return nil
        }
    }

    /// Decides whether damage found in the newest segment (or a record file) is a torn tail
    /// (the remains of a write a crash cut short: a partial record, or zeros, with nothing
    /// valid after it) or corruption (a whole record that fails its checksum, a length that
    /// was flipped, or valid records after the damage).
    private func classify(_ fd: some RecordSource, failure: Failure, fileSize: Int64, expected: UInt64) throws(Errno) -> Failure {
        guard isLast else {
            return Failure(kind: .corrupt, offset: failure.offset, reason: failure.reason + " (not in the newest segment)")
        }
        let tail = try fd.readBytes(at: failure.offset, count: Int(min(fileSize - failure.offset, Int64(maxRecordSize) + 1)))
        if tail.allSatisfy({ $0 == 0 }) {
            return Failure(kind: .tornTail, offset: failure.offset, reason: "zero-filled tail")
        }
        if failure.kind == .corrupt { return failure }
        return tail.withUnsafeBytes { raw -> Failure in
            // A record whose length field was damaged but whose remaining bytes verify
            // with the true length is corruption, not a torn write.
            if raw.count >= RecordFormat.headerSize {
                var copy = Array(raw)
                let actual = UInt32(raw.count)
                withUnsafeBytes(of: actual.littleEndian) { for i in 0..<4 { copy[i] = $0[i] } }
                let verified = copy.withUnsafeBytes { c in
                    RecordFormat.checksum(c, at: 0, length: c.count) == c.u32(at: 4)
                }
                if verified {
                    return Failure(kind: .corrupt, offset: failure.offset, reason: "record length field damaged")
                }
            }
            // Any valid record after the damage means the damage is not a torn tail.
            var probe = 1
            while probe + RecordFormat.headerSize <= raw.count {
                let length = Int(raw.u32(at: probe))
                if length >= RecordFormat.headerSize, probe + length <= raw.count,
                   holds(raw[probe + 8]), raw[probe + 9] == 0 {
                    let sequence = raw.u64(at: probe + 16)
                    if !sequenced || (sequence >= expected && sequence - expected < 1 << 32),
                       RecordFormat.checksum(raw, at: probe, length: length) == raw.u32(at: probe + 4) {
                        return Failure(kind: .corrupt, offset: failure.offset, reason: "damaged record followed by a valid record at offset \(failure.offset + Int64(probe))")
                    }
                }
                probe += 1
            }
            return failure
        }
    }
}

extension Int64 {
    var clamped: Int { Int(clamping: self) }
}

func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}
