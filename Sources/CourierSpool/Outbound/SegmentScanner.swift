import SystemPackage

/// Reads a segment file from start to end, verifying every record, without repairing
/// anything. Used by recovery (which then repairs) and by the read-only inspector.
struct SegmentScanner {
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
    }

    struct Result {
        var header: FileHeader?
        var offsets: [UInt32] = []
        var end: Int64 = Int64(FileHeader.size)
        var fileSize: Int64 = 0
        var failure: Failure?
        var firstEnqueuedAt: Int64?
        /// Payload bytes of the records, when asked to keep them (small files only).
        var lastSequence: UInt64? { offsets.isEmpty ? nil : (header.map { $0.baseSequence + UInt64(offsets.count) - 1 }) }
    }

    static let chunkSize = 1 << 20

    var maxRecordSize: Int
    /// The stream id the segment must carry, if known.
    var expectedStreamID: UInt64?
    var expectedBase: UInt64
    /// Whether this is the newest segment (the only one that may have a torn tail).
    var isLast: Bool
    /// When true, a partial record at the end is reported as torn even in a non-last
    /// segment (the inspector, racing a writer, sees appends in flight).
    var collectOffsets = true

    /// Scans; `visit` sees each good record (header, file offset, the bytes it occupies).
    func scan(
        _ fd: FileDescriptor,
        visit: (RecordFormat.Header, Int64, UnsafeRawBufferPointer) -> Void = { _, _, _ in }
    ) throws(Errno) -> Result {
        var result = Result()
        result.fileSize = try fd.fileSize()
        let headerBytes = try fd.readBytes(at: 0, count: FileHeader.size)
        let decodedHeader = headerBytes.withUnsafeBytes { FileHeader.decode($0, kind: .segment) }
        switch decodedHeader {
        case .failure(let error):
            let reason: String
            switch error {
            case .tooShort:
                // A segment created by a crash before its header was whole.
                if isLast && headerBytes.allSatisfy({ $0 == 0 }) || isLast && headerBytes.count < FileHeader.size {
                    result.failure = Failure(kind: .tornTail, offset: 0, reason: "segment header incomplete")
                    return result
                }
                reason = "segment header too short (\(headerBytes.count) bytes)"
            case .badMagic: reason = "bad magic in segment header"
            case .checksum: reason = "segment header checksum mismatch"
            case .unsupportedVersion(let v): reason = "unsupported segment format version \(v)"
            }
            result.failure = Failure(kind: .corrupt, offset: 0, reason: reason)
            return result
        case .success(let header):
            if header.baseSequence != expectedBase {
                result.failure = Failure(kind: .corrupt, offset: 0, reason: "segment header says base \(header.baseSequence), file name says \(expectedBase)")
                return result
            }
            if let expectedStreamID, header.streamID != expectedStreamID {
                result.failure = Failure(kind: .corrupt, offset: 0, reason: "segment belongs to stream \(hex(header.streamID)), the log is stream \(hex(expectedStreamID))")
                return result
            }
            result.header = header
        }

        var position = Int64(FileHeader.size)
        var expected = expectedBase
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
                        if header.type != RecordFormat.RecordType.message.rawValue || header.sequenceNumber != expected {
                            stop = Failure(kind: .corrupt, offset: position + Int64(consumed), reason: header.sequenceNumber != expected
                                ? "record holds sequence \(header.sequenceNumber), expected \(expected)"
                                : "record type \(header.type) in a segment")
                            return
                        }
                        if collectOffsets { result.offsets.append(UInt32(truncatingIfNeeded: position + Int64(consumed))) }
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
            if var failure = stop {
                if failure.kind == .tornTail || isLast {
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
        result.end = position
        return result
    }

    /// Decides whether damage found in the newest segment is a torn tail (the remains of a
    /// write a crash cut short: a partial record, or zeros, with nothing valid after it) or
    /// corruption (a whole record that fails its checksum, a length that was flipped, or
    /// valid records after the damage).
    private func classify(_ fd: FileDescriptor, failure: Failure, fileSize: Int64, expected: UInt64) throws(Errno) -> Failure {
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
                   raw[probe + 8] == RecordFormat.RecordType.message.rawValue, raw[probe + 9] == 0 {
                    let sequence = raw.u64(at: probe + 16)
                    if sequence >= expected, sequence - expected < 1 << 32,
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
