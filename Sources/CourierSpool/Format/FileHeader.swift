import CourierChecksum
/// The 48-byte header at the start of every spool file (see docs/SPOOL-FORMAT.md):
///
/// ```
///  0  8 bytes magic, per file kind ("CSPLSEG\0", "CSPLDLQ\0", "CSPLINB\0")
///  8  u16 format version (segments 2 and dead letters 1; inbound journal 3; segments read
///         1 too, the journal 1 and 2)
/// 10  u16 header length (48)
/// 12  u32 reserved, 0
/// 16  u64 stream id (segments; 0 elsewhere)
/// 24  u64 base sequence number (segments; 0 elsewhere)
/// 32  i64 creation time, ns since the Unix epoch
/// 40  u32 CRC-32C of bytes 0..<40
/// 44  u32 reserved, 0
/// ```
struct FileHeader: Equatable {
    static let size = 48

    enum Kind {
        case segment, deadLetters, inbound

        /// The version written. The inbound journal's 2 adds the reservation ceiling and
        /// boot id to its snapshots, its 3 the verdict records; a segment's 2 adds the end
        /// marker after the last record, which lets the file be reused (docs/SPOOL-FORMAT.md).
        var version: UInt16 {
            switch self {
            case .deadLetters: 1
            case .segment: 2
            case .inbound: 3
            }
        }

        /// Versions read.
        var readableVersions: ClosedRange<UInt16> {
            switch self {
            case .deadLetters: 1...1
            case .segment: 1...2
            case .inbound: 1...3
            }
        }

        var magic: [UInt8] {
            switch self {
            case .segment: Array("CSPLSEG".utf8) + [0]
            case .deadLetters: Array("CSPLDLQ".utf8) + [0]
            case .inbound: Array("CSPLINB".utf8) + [0]
            }
        }
    }

    var kind: Kind
    var version: UInt16
    var streamID: UInt64
    var baseSequence: UInt64
    var createdAt: Int64

    /// A header of the version `kind` writes.
    init(kind: Kind, streamID: UInt64, baseSequence: UInt64, createdAt: Int64) {
        self.init(kind: kind, version: kind.version, streamID: streamID, baseSequence: baseSequence, createdAt: createdAt)
    }

    init(kind: Kind, version: UInt16, streamID: UInt64, baseSequence: UInt64, createdAt: Int64) {
        self.kind = kind
        self.version = version
        self.streamID = streamID
        self.baseSequence = baseSequence
        self.createdAt = createdAt
    }

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        writer.append(kind.magic)
        writer.u16(version)
        writer.u16(UInt16(Self.size))
        writer.u32(0)
        writer.u64(streamID)
        writer.u64(baseSequence)
        writer.i64(createdAt)
        let crc = writer.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        writer.u32(crc)
        writer.u32(0)
        return writer.bytes
    }

    enum DecodeError: Error, Equatable {
        case tooShort
        case badMagic
        case unsupportedVersion(UInt16)
        case checksum
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, kind: Kind) -> Result<FileHeader, DecodeError> {
        guard bytes.count >= size else { return .failure(.tooShort) }
        guard Array(bytes[0..<8]) == kind.magic else { return .failure(.badMagic) }
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<40]))
        guard crc == bytes.u32(at: 40), bytes.u32(at: 44) == 0 else { return .failure(.checksum) }
        let version = bytes.u16(at: 8)
        guard kind.readableVersions.contains(version), bytes.u16(at: 10) == UInt16(size) else {
            return .failure(.unsupportedVersion(version))
        }
        return .success(FileHeader(kind: kind, version: version, streamID: bytes.u64(at: 16), baseSequence: bytes.u64(at: 24), createdAt: bytes.i64(at: 32)))
    }
}
