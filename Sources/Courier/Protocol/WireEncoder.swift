import CourierChecksum

/// Builds protocol frames (little-endian fields, CRC-32C trailer).
///
/// Data frames are built incrementally so the I/O thread can pack many spooled records
/// into one frame without an intermediate array per record:
///
/// ```swift
/// var encoder = WireEncoder.data(stream: id, version: 2)
/// encoder.appendRecord(sequence: 7, attempt: 1, isTombstone: false, expiry: 0, headers: [], payload: bytes)
/// let frame = encoder.finish()
/// ```
struct WireEncoder {
    private var bytes: [UInt8]
    private var countOffset: Int?
    private(set) var recordCount = 0
    /// The protocol version the frame is written in (1 or 2).
    let version: UInt8

    private init(kind: WireFrame.Kind, version: UInt8, capacity: Int) {
        self.version = version
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes.append(Wire.magic.0)
        bytes.append(Wire.magic.1)
        bytes.append(version)
        bytes.append(kind.rawValue)
    }

    /// The encoded size so far, trailer excluded.
    var byteCount: Int { bytes.count }

    /// Starts a data frame for `stream` in protocol `version`.
    static func data(stream: UInt64, version: UInt8, capacity: Int = 4096) -> WireEncoder {
        var encoder = WireEncoder(kind: .data, version: version, capacity: capacity)
        encoder.u64(stream)
        encoder.countOffset = encoder.bytes.count
        encoder.u16(0)
        return encoder
    }

    /// Adds one record to a data frame. `headers`, an encoded header block, goes only in a
    /// version-2 frame (the caller never gives a version-1 frame a record that has some).
    mutating func appendRecord(
        sequence: UInt64, attempt: UInt32, isTombstone: Bool, expiry: Int64,
        headers: some Collection<UInt8>, payload: some Collection<UInt8>
    ) {
        // The record's header is grown in one append and filled in place: four generic
        // appends of a few bytes each cost more than the rest of the record (profile of
        // the sender's I/O thread).
        let start = bytes.count
        let length = UInt32(truncatingIfNeeded: isTombstone ? 0 : payload.count)
        let withHeaders = version >= 2 && !isTombstone && !headers.isEmpty
        bytes.append(contentsOf: version >= 2 ? Self.zeroRecordHeader2 : Self.zeroRecordHeader1)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: sequence.littleEndian, toByteOffset: start, as: UInt64.self)
            raw.storeBytes(of: attempt.littleEndian, toByteOffset: start + 8, as: UInt32.self)
            raw[start + 12] = isTombstone ? Wire.tombstoneFlag : 0
            raw.storeBytes(of: UInt64(bitPattern: expiry).littleEndian, toByteOffset: start + 13, as: UInt64.self)
            if version >= 2 {
                let headerLength = UInt16(truncatingIfNeeded: withHeaders ? headers.count : 0)
                raw.storeBytes(of: headerLength.littleEndian, toByteOffset: start + 21, as: UInt16.self)
                raw.storeBytes(of: length.littleEndian, toByteOffset: start + 23, as: UInt32.self)
            } else {
                raw.storeBytes(of: length.littleEndian, toByteOffset: start + 21, as: UInt32.self)
            }
        }
        if withHeaders { bytes.append(contentsOf: headers) }
        if !isTombstone { bytes.append(contentsOf: payload) }
        recordCount += 1
    }

    private static let zeroRecordHeader1 = [UInt8](repeating: 0, count: Wire.recordHeaderSize(version: 1))
    private static let zeroRecordHeader2 = [UInt8](repeating: 0, count: Wire.recordHeaderSize(version: 2))

    /// Appends the checksum and returns the finished frame.
    consuming func finish() -> [UInt8] {
        if let countOffset {
            bytes[countOffset] = UInt8(truncatingIfNeeded: recordCount)
            bytes[countOffset + 1] = UInt8(truncatingIfNeeded: recordCount >> 8)
        }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        u32(crc)
        return bytes
    }

    /// Encodes any frame in one call, in protocol `version` (VERSIONS always in version 1, so
    /// that any sender reads it). In version 2, a HELLO without a nonce carries 0, and a
    /// WELCOME without an answer carries zeros (the caller gives each one).
    static func encode(_ frame: WireFrame, version: UInt8) -> [UInt8] {
        switch frame {
        case .hello(let hello):
            var encoder = WireEncoder(kind: .hello, version: version, capacity: 40)
            encoder.u64(hello.stream)
            encoder.u64(hello.firstUnacknowledged)
            encoder.u64(hello.nextSequence)
            if version >= 2 { encoder.u64(hello.nonce ?? 0) }
            return encoder.finish()
        case .welcome(let welcome):
            var encoder = WireEncoder(kind: .welcome, version: version, capacity: 48)
            encoder.u64(welcome.stream)
            encoder.u64(welcome.processedUpTo)
            encoder.u64(welcome.receivedUpTo)
            if version >= 2 {
                encoder.u64(welcome.answer?.nonce ?? 0)
                encoder.u32(welcome.answer?.window ?? 0)
                encoder.u32(welcome.answer?.maxMessageSize ?? 0)
                let ranges = welcome.answer?.receivedRanges ?? []
                encoder.u16(UInt16(truncatingIfNeeded: ranges.count))
                for range in ranges {
                    encoder.u64(range.lowerBound)
                    encoder.u64(range.upperBound)
                }
            }
            return encoder.finish()
        case .data(let batch):
            var encoder = WireEncoder.data(stream: batch.stream, version: version)
            for record in batch.records {
                encoder.appendRecord(sequence: record.sequence, attempt: record.attempt,
                                     isTombstone: record.isTombstone, expiry: record.expiry,
                                     headers: record.headers, payload: record.payload)
            }
            return encoder.finish()
        case .ack(let ack):
            var encoder = WireEncoder(kind: .ack, version: version, capacity: 36 + 16 * ack.processedRanges.count)
            encoder.u64(ack.stream)
            encoder.u64(ack.processedUpTo)
            encoder.u64(ack.receivedUpTo)
            encoder.u16(UInt16(truncatingIfNeeded: ack.processedRanges.count))
            for range in ack.processedRanges {
                encoder.u64(range.lowerBound)
                encoder.u64(range.upperBound)
            }
            return encoder.finish()
        case .outcomes(let outcomes):
            var encoder = WireEncoder(kind: .outcomes, version: version, capacity: 64)
            encoder.u64(outcomes.stream)
            encoder.u16(UInt16(truncatingIfNeeded: outcomes.entries.count))
            for entry in outcomes.entries {
                let reason = Wire.truncatedReason(entry.reason)
                encoder.u64(entry.sequence)
                encoder.bytes.append(entry.code.rawValue)
                encoder.u16(UInt16(reason.count))
                encoder.bytes.append(contentsOf: reason)
            }
            return encoder.finish()
        case .versions(let versions):
            var encoder = WireEncoder(kind: .versions, version: 1, capacity: 16)
            encoder.bytes.append(UInt8(truncatingIfNeeded: versions.supported.count))
            encoder.bytes.append(contentsOf: versions.supported)
            return encoder.finish()
        }
    }

    private mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    private mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
