import CourierChecksum

/// Builds protocol frames (little-endian fields, CRC-32C trailer).
///
/// Data frames are built incrementally so the I/O thread can pack many spooled records
/// into one frame without an intermediate array per record:
///
/// ```swift
/// var encoder = WireEncoder.data(stream: id)
/// encoder.appendRecord(sequence: 7, attempt: 1, isTombstone: false, expiry: 0, payload: bytes)
/// let frame = encoder.finish()
/// ```
struct WireEncoder {
    private var bytes: [UInt8]
    private var countOffset: Int?
    private(set) var recordCount = 0

    private init(kind: WireFrame.Kind, capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes.append(Wire.magic.0)
        bytes.append(Wire.magic.1)
        bytes.append(Wire.version)
        bytes.append(kind.rawValue)
    }

    /// The encoded size so far, trailer excluded.
    var byteCount: Int { bytes.count }

    /// Starts a data frame for `stream`.
    static func data(stream: UInt64, capacity: Int = 4096) -> WireEncoder {
        var encoder = WireEncoder(kind: .data, capacity: capacity)
        encoder.u64(stream)
        encoder.countOffset = encoder.bytes.count
        encoder.u16(0)
        return encoder
    }

    /// Adds one record to a data frame.
    mutating func appendRecord(
        sequence: UInt64, attempt: UInt32, isTombstone: Bool, expiry: Int64, payload: some Collection<UInt8>
    ) {
        // The 25-byte header is grown in one append and filled in place: four generic
        // appends of a few bytes each cost more than the rest of the record (profile of
        // the sender's I/O thread).
        let start = bytes.count
        let length = UInt32(truncatingIfNeeded: isTombstone ? 0 : payload.count)
        bytes.append(contentsOf: Self.zeroRecordHeader)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: sequence.littleEndian, toByteOffset: start, as: UInt64.self)
            raw.storeBytes(of: attempt.littleEndian, toByteOffset: start + 8, as: UInt32.self)
            raw[start + 12] = isTombstone ? Wire.tombstoneFlag : 0
            raw.storeBytes(of: UInt64(bitPattern: expiry).littleEndian, toByteOffset: start + 13, as: UInt64.self)
            raw.storeBytes(of: length.littleEndian, toByteOffset: start + 21, as: UInt32.self)
        }
        if !isTombstone { bytes.append(contentsOf: payload) }
        recordCount += 1
    }

    private static let zeroRecordHeader = [UInt8](repeating: 0, count: Wire.recordHeaderSize)

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

    /// Encodes any frame in one call.
    static func encode(_ frame: WireFrame) -> [UInt8] {
        switch frame {
        case .hello(let hello):
            var encoder = WireEncoder(kind: .hello, capacity: 32)
            encoder.u64(hello.stream)
            encoder.u64(hello.firstUnacknowledged)
            encoder.u64(hello.nextSequence)
            return encoder.finish()
        case .welcome(let welcome):
            var encoder = WireEncoder(kind: .welcome, capacity: 32)
            encoder.u64(welcome.stream)
            encoder.u64(welcome.processedUpTo)
            encoder.u64(welcome.receivedUpTo)
            return encoder.finish()
        case .data(let batch):
            var encoder = WireEncoder.data(stream: batch.stream)
            for record in batch.records {
                encoder.appendRecord(sequence: record.sequence, attempt: record.attempt,
                                     isTombstone: record.isTombstone, expiry: record.expiry,
                                     payload: record.payload)
            }
            return encoder.finish()
        case .ack(let ack):
            var encoder = WireEncoder(kind: .ack, capacity: 36 + 16 * ack.processedRanges.count)
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
            var encoder = WireEncoder(kind: .outcomes, capacity: 64)
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
            var encoder = WireEncoder(kind: .versions, capacity: 16)
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
