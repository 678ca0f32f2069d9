import CourierChecksum
/// The layout of one record (see docs/SPOOL-FORMAT.md, "Record"):
///
/// ```
///  0  u32  length of the whole record (header + payload)
///  4  u32  CRC-32C over bytes 0..<4 and 8..<length
///  8  u8   type (1 = message, 2 = dead letter, 3 = dead-letter removal, 4 = inbound state)
///  9  u8   reserved, 0
/// 10  u16  flags
/// 12  u32  attempt
/// 16  u64  sequence number (or dead-letter id)
/// 24  i64  enqueue time, ns since the Unix epoch
/// 32  i64  expiry, ns since the Unix epoch, 0 = none
/// 40  …    body
/// ```
enum RecordFormat {
    static let headerSize = 40

    /// What a version-2 segment holds right after its last record: a record header's worth
    /// of zeros, written with every append and overwritten by the next one. A clean end is
    /// always this (or the end of the file), whatever stale bytes of an earlier use follow
    /// it in a reused file (docs/SPOOL-FORMAT.md, "Segments").
    static let endMarker = [UInt8](repeating: 0, count: headerSize)

    enum RecordType: UInt8 {
        case message = 1
        case deadLetter = 2
        case deadLetterRemoval = 3
        case inboundState = 4
        /// A receiver's verdict other than processed, kept until the sender has heard it
        /// (inbound journal, format 3).
        case inboundVerdict = 5
    }

    struct Header: Equatable {
        var length: Int
        var type: UInt8
        var flags: UInt16
        var attempt: UInt32
        var sequenceNumber: UInt64
        var enqueuedAt: Int64
        var expiresAt: Int64
    }

    /// Encodes one record onto `writer`.
    static func encode(
        into writer: inout ByteWriter,
        type: RecordType,
        sequenceNumber: UInt64,
        enqueuedAt: Int64,
        expiresAt: Int64?,
        attempt: UInt32,
        flags: UInt16,
        body: [UInt8]
    ) {
        encode(into: &writer, type: type, sequenceNumber: sequenceNumber, enqueuedAt: enqueuedAt, expiresAt: expiresAt,
               attempt: attempt, flags: flags) { $0.append(body) }
    }

    /// Encodes one record onto `writer`, its body written by `body` straight after the
    /// header (no body array of its own).
    static func encode(
        into writer: inout ByteWriter,
        type: RecordType,
        sequenceNumber: UInt64,
        enqueuedAt: Int64,
        expiresAt: Int64?,
        attempt: UInt32,
        flags: UInt16,
        body: (inout ByteWriter) -> Void
    ) {
        let start = writer.bytes.count
        writer.u32(0)  // the length, once the body is written
        writer.u32(0)
        writer.u8(type.rawValue)
        writer.u8(0)
        writer.u16(flags)
        writer.u32(attempt)
        writer.u64(sequenceNumber)
        writer.i64(enqueuedAt)
        writer.i64(expiresAt ?? 0)
        body(&writer)
        writer.patchU32(UInt32(writer.bytes.count - start), at: start)
        let crc = writer.bytes.withUnsafeBytes { raw in
            let head = CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[start..<(start + 4)]))
            return CRC32C.update(head, UnsafeRawBufferPointer(rebasing: raw[(start + 8)...]))
        }
        writer.patchU32(crc, at: start + 4)
    }

    /// What the bytes at an offset hold.
    enum Decoded {
        /// A whole record whose checksum verified.
        case record(Header)
        /// Fewer bytes remain than the header or the length it declares.
        case incomplete(declaredLength: Int?)
        /// A whole record that failed its checksum, or a header no writer produces.
        case invalid(String)
    }

    /// Decodes the record starting at `offset` of `buffer`, verifying its checksum.
    static func decode(_ buffer: UnsafeRawBufferPointer, at offset: Int, maxLength: Int) -> Decoded {
        let remaining = buffer.count - offset
        if remaining < headerSize { return .incomplete(declaredLength: remaining >= 4 ? Int(buffer.u32(at: offset)) : nil) }
        let length = Int(buffer.u32(at: offset))
        if length < headerSize || length > maxLength {
            return .invalid("impossible record length \(length)")
        }
        if buffer[offset + 9] != 0 { return .invalid("reserved header byte is \(buffer[offset + 9])") }
        if length > remaining { return .incomplete(declaredLength: length) }
        let stored = buffer.u32(at: offset + 4)
        if checksum(buffer, at: offset, length: length) != stored {
            return .invalid("checksum mismatch")
        }
        return .record(header(buffer, at: offset, length: length))
    }

    static func checksum(_ buffer: UnsafeRawBufferPointer, at offset: Int, length: Int) -> UInt32 {
        let head = CRC32C.update(0, UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + 4)]))
        return CRC32C.update(head, UnsafeRawBufferPointer(rebasing: buffer[(offset + 8)..<(offset + length)]))
    }

    static func header(_ buffer: UnsafeRawBufferPointer, at offset: Int, length: Int) -> Header {
        Header(
            length: length,
            type: buffer[offset + 8],
            flags: buffer.u16(at: offset + 10),
            attempt: buffer.u32(at: offset + 12),
            sequenceNumber: buffer.u64(at: offset + 16),
            enqueuedAt: buffer.i64(at: offset + 24),
            expiresAt: buffer.i64(at: offset + 32)
        )
    }

    static func body(_ buffer: UnsafeRawBufferPointer, at offset: Int, length: Int) -> [UInt8] {
        Array(buffer[(offset + headerSize)..<(offset + length)])
    }
}
