/// Why a frame from the network was refused. Every refused frame is dropped, counted and
/// logged; none changes any stream's state.
enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Shorter than a header and trailer, or a field runs past the end.
    case truncated(needed: Int, available: Int)
    /// Bytes left over after the last field.
    case trailingBytes(Int)
    /// Not a Courier frame.
    case badMagic
    /// A protocol version this node does not speak.
    case unsupportedVersion(UInt8)
    /// A frame kind this version does not define.
    case unknownKind(UInt8)
    /// The CRC-32C trailer does not match the contents.
    case checksumMismatch(expected: UInt32, actual: UInt32)
    /// A field holds a value the protocol forbids.
    case invalidField(String)
    /// A payload above the node's maximum message size.
    case payloadTooLarge(Int, limit: Int)
    /// The frame holds more items than the protocol allows.
    case tooManyItems(String, Int)

    var description: String {
        switch self {
        case .truncated(let needed, let available): "truncated frame: needs \(needed) bytes, has \(available)"
        case .trailingBytes(let count): "\(count) unexpected bytes after the last field"
        case .badMagic: "not a Courier frame (bad magic)"
        case .unsupportedVersion(let version): "unsupported protocol version \(version)"
        case .unknownKind(let kind): "unknown frame kind \(kind)"
        case .checksumMismatch(let expected, let actual):
            "checksum mismatch: frame says \(String(expected, radix: 16)), contents give \(String(actual, radix: 16))"
        case .invalidField(let what): "invalid field: \(what)"
        case .payloadTooLarge(let size, let limit): "payload of \(size) bytes exceeds the limit of \(limit)"
        case .tooManyItems(let what, let count): "too many \(what): \(count)"
        }
    }

    /// A short stable name for metrics labels.
    var metricLabel: String {
        switch self {
        case .truncated: "truncated"
        case .trailingBytes: "trailing_bytes"
        case .badMagic: "bad_magic"
        case .unsupportedVersion: "unsupported_version"
        case .unknownKind: "unknown_kind"
        case .checksumMismatch: "checksum"
        case .invalidField: "invalid_field"
        case .payloadTooLarge: "oversized"
        case .tooManyItems: "too_many_items"
        }
    }
}
