import CourierChecksum
import CourierSpool

/// Decodes and validates frames from the network.
///
/// Everything from the network is untrusted: the decoder checks the magic, version, kind,
/// checksum, every length against what is left, every count against the protocol's limits
/// and every field against its allowed range, and refuses the whole frame on the first
/// problem. It never traps and never allocates more than the frame's own size.
struct WireDecoder {
    /// The largest payload accepted in a data record.
    var maxPayloadSize: Int
    /// The newest protocol version accepted; frames of versions 1 through it are read.
    var latestVersion: UInt8 = Wire.latestVersion

    func decode(_ frame: [UInt8]) throws(WireError) -> WireFrame {
        let minimum = Wire.headerSize + Wire.trailerSize
        guard frame.count >= minimum else { throw .truncated(needed: minimum, available: frame.count) }
        guard frame[0] == Wire.magic.0, frame[1] == Wire.magic.1 else { throw .badMagic }
        let version = frame[2]
        guard version >= 1, version <= latestVersion else { throw .unsupportedVersion(version) }
        guard let kind = WireFrame.Kind(rawValue: frame[3]) else { throw .unknownKind(frame[3]) }

        let bodyEnd = frame.count - Wire.trailerSize
        let stated = frame.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: bodyEnd, as: UInt32.self)) }
        let actual = frame.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<bodyEnd])) }
        guard stated == actual else { throw .checksumMismatch(expected: stated, actual: actual) }

        var reader = WireReader(frame, start: Wire.headerSize, end: bodyEnd)
        if kind == .versions {
            guard version == 1 else { throw .invalidField("versions frame in version \(version); it is always version 1") }
            // The one frame without a stream id: the versions a receiver speaks.
            let count = Int(try reader.u8())
            guard count >= 1 else { throw .invalidField("versions frame with no version") }
            var supported: [UInt8] = []
            for _ in 0..<count {
                let version = try reader.u8()
                guard version > (supported.last ?? 0) else { throw .invalidField("versions not ascending") }
                supported.append(version)
            }
            guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
            return .versions(.init(supported: supported))
        }
        let stream = try reader.u64()
        guard stream != 0 else { throw .invalidField("stream id 0") }
        let decoded: WireFrame
        switch kind {
        case .hello:
            let first = try reader.u64()
            let next = try reader.u64()
            try checkMark(next, "hello next sequence")
            guard first >= 1, next >= first else {
                throw .invalidField("hello needs 1 ≤ first unacknowledged (\(first)) ≤ next sequence (\(next))")
            }
            let nonce = version >= 2 ? try reader.u64() : nil
            decoded = .hello(.init(stream: stream, firstUnacknowledged: first, nextSequence: next, nonce: nonce))
        case .welcome:
            let processed = try reader.u64()
            let received = try reader.u64()
            try checkMark(received, "welcome received-up-to")
            guard received >= processed else {
                throw .invalidField("welcome received-up-to \(received) below processed-up-to \(processed)")
            }
            var answer: WireFrame.Answer?
            if version >= 2 {
                let nonce = try reader.u64()
                let window = try reader.u32()
                let maxMessageSize = try reader.u32()
                guard window >= 1, window <= Wire.maxWindow else { throw .invalidField("welcome window \(window) outside 1…\(Wire.maxWindow)") }
                guard maxMessageSize >= 1 else { throw .invalidField("welcome maximum message size 0") }
                let ranges = try decodeRanges(after: received, "received range", &reader)
                answer = .init(nonce: nonce, window: window, maxMessageSize: maxMessageSize, receivedRanges: ranges)
            }
            decoded = .welcome(.init(stream: stream, processedUpTo: processed, receivedUpTo: received, answer: answer))
        case .data:
            decoded = .data(try decodeData(stream: stream, version: version, &reader))
        case .ack:
            decoded = .ack(try decodeAck(stream: stream, &reader))
        case .outcomes:
            decoded = .outcomes(try decodeOutcomes(stream: stream, &reader))
        case .versions:
            preconditionFailure("VERSIONS frames are decoded above, before the stream id")
        }
        guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
        return decoded
    }

    private func decodeData(stream: UInt64, version: UInt8, _ reader: inout WireReader) throws(WireError) -> WireFrame.DataBatch {
        let count = Int(try reader.u16())
        guard count >= 1 else { throw .invalidField("data frame with no records") }
        guard count <= Wire.maxRecordsPerFrame else { throw .tooManyItems("records", count) }
        // Each record needs at least its header: refuse impossible counts before reserving.
        let recordHeaderSize = Wire.recordHeaderSize(version: version)
        guard count * recordHeaderSize <= reader.remaining else {
            throw .truncated(needed: count * recordHeaderSize, available: reader.remaining)
        }
        var records: [WireFrame.DataRecord] = []
        records.reserveCapacity(count)
        var previous: UInt64 = 0
        for _ in 0..<count {
            let sequence = try reader.u64()
            let attempt = try reader.u32()
            let flags = try reader.u8()
            let expiry = Int64(bitPattern: try reader.u64())
            let headerLength = version >= 2 ? Int(try reader.u16()) : 0
            let length = Int(try reader.u32())
            guard sequence > previous else { throw .invalidField("sequence \(sequence) not above \(previous)") }
            try checkMark(sequence, "data sequence")
            guard attempt >= 1 else { throw .invalidField("attempt 0") }
            guard flags & ~Wire.tombstoneFlag == 0 else { throw .invalidField("unknown record flags \(flags)") }
            guard expiry >= 0 else { throw .invalidField("negative expiry") }
            let isTombstone = flags & Wire.tombstoneFlag != 0
            guard !isTombstone || (length == 0 && headerLength == 0) else { throw .invalidField("tombstone with a payload or headers") }
            guard length <= maxPayloadSize else { throw .payloadTooLarge(length, limit: maxPayloadSize) }
            guard headerLength <= HeaderBlock.maxBytes else { throw .tooManyItems("header bytes", headerLength) }
            // No headers (the usual case): an empty slice of nothing, not of the frame (which
            // would retain the frame's buffer once more per record).
            let headers = headerLength == 0 ? [] : try reader.slice(headerLength)
            if !headers.isEmpty, let problem = headers.withUnsafeBytes({ HeaderBlock.validate($0) }) {
                throw .invalidField("headers of sequence \(sequence): \(problem)")
            }
            let payload = try reader.slice(length)
            records.append(.init(sequence: sequence, attempt: attempt, isTombstone: isTombstone,
                                 expiry: expiry, payload: payload, headers: headers))
            previous = sequence
        }
        return .init(stream: stream, records: records)
    }

    private func decodeAck(stream: UInt64, _ reader: inout WireReader) throws(WireError) -> WireFrame.Ack {
        let processed = try reader.u64()
        let received = try reader.u64()
        try checkMark(received, "ack received-up-to")
        guard received >= processed else {
            throw .invalidField("ack received-up-to \(received) below processed-up-to \(processed)")
        }
        let ranges = try decodeRanges(after: processed, "selective range", &reader)
        return .init(stream: stream, processedUpTo: processed, receivedUpTo: received, processedRanges: ranges)
    }

    /// A u16 count and that many closed ranges (first, last), ascending, each leaving a gap
    /// after `mark` or the range before it: a number just above either would have been
    /// covered by it.
    private func decodeRanges(after mark: UInt64, _ what: String, _ reader: inout WireReader) throws(WireError) -> [ClosedRange<UInt64>] {
        let count = Int(try reader.u16())
        guard count <= Wire.maxRanges else { throw .tooManyItems("ranges", count) }
        guard count * 16 <= reader.remaining else { throw .truncated(needed: count * 16, available: reader.remaining) }
        var ranges: [ClosedRange<UInt64>] = []
        ranges.reserveCapacity(count)
        var gap = mark + 1
        for _ in 0..<count {
            let low = try reader.u64()
            let high = try reader.u64()
            guard low > gap, high >= low else {
                throw .invalidField("\(what) \(low)...\(high) out of order")
            }
            try checkMark(high, "\(what) end")
            ranges.append(low...high)
            gap = high + 1
        }
        return ranges
    }

    private func decodeOutcomes(stream: UInt64, _ reader: inout WireReader) throws(WireError) -> WireFrame.Outcomes {
        let count = Int(try reader.u16())
        guard count >= 1 else { throw .invalidField("outcomes frame with no entries") }
        guard count <= Wire.maxOutcomesPerFrame else { throw .tooManyItems("outcomes", count) }
        var entries: [WireFrame.OutcomeEntry] = []
        for _ in 0..<count {
            let sequence = try reader.u64()
            guard sequence >= 1 else { throw .invalidField("outcome for sequence 0") }
            try checkMark(sequence, "outcome sequence")
            let rawCode = try reader.u8()
            guard let code = WireFrame.OutcomeCode(rawValue: rawCode) else { throw .invalidField("outcome code \(rawCode)") }
            let length = Int(try reader.u16())
            guard length <= Wire.maxReasonBytes else { throw .tooManyItems("reason bytes", length) }
            let bytes = try reader.slice(length)
            guard let reason = String(validating: bytes, as: UTF8.self) else { throw .invalidField("reason is not UTF-8") }
            entries.append(.init(sequence: sequence, code: code, reason: reason))
        }
        return .init(stream: stream, entries: entries)
    }
}

/// Refuses a sequence number or mark above ``Wire/maxSequence``, before any arithmetic
/// touches it.
private func checkMark(_ value: UInt64, _ what: String) throws(WireError) {
    guard value <= Wire.maxSequence else { throw .invalidField("\(what) \(value) above the protocol's limit 2^62") }
}

/// A bounds-checked little-endian cursor over a received frame.
struct WireReader {
    private let bytes: [UInt8]
    private var position: Int
    private let end: Int

    init(_ bytes: [UInt8], start: Int, end: Int) {
        self.bytes = bytes
        self.position = start
        self.end = end
    }

    var remaining: Int { end - position }

    private mutating func take(_ count: Int) throws(WireError) -> Int {
        guard count >= 0, count <= remaining else { throw .truncated(needed: count, available: remaining) }
        defer { position += count }
        return position
    }

    mutating func u8() throws(WireError) -> UInt8 { bytes[try take(1)] }

    mutating func u16() throws(WireError) -> UInt16 {
        let at = try take(2)
        return UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    mutating func u32() throws(WireError) -> UInt32 {
        let at = try take(4)
        return bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    }

    mutating func u64() throws(WireError) -> UInt64 {
        let at = try take(8)
        return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    }

    mutating func slice(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
        let at = try take(count)
        return bytes[at..<(at + count)]
    }
}
