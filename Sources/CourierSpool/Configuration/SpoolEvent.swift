import SystemPackage

/// Something the spool found that the application should know about, delivered to
/// ``SpoolConfiguration/onEvent``.
package enum SpoolEvent: Sendable, Hashable, CustomStringConvertible {
    /// Damaged data was found (a checksum failure or an impossible header). It was not and
    /// will not be returned as a record. `quarantinedTo` names the file the damaged bytes
    /// were moved to, when they were moved.
    case corruptionFound(CorruptionReport)
    /// A partial record at the end of the newest segment (a write cut short by a crash) was
    /// truncated on open. Nothing whose append had completed is lost by this.
    case tornTailTruncated(path: FilePath, offset: Int64, bytes: Int64)

    package var description: String {
        switch self {
        case .corruptionFound(let report): "corruption found: \(report)"
        case .tornTailTruncated(let path, let offset, let bytes): "torn tail truncated: \(bytes) bytes at offset \(offset) of \(path)"
        }
    }
}

/// Where damaged data was found and what was done with it.
package struct CorruptionReport: Sendable, Hashable, CustomStringConvertible {
    /// The peer (outbound logs, dead letters) or `nil` (inbound state).
    package var peer: String?
    /// The damaged file.
    package var path: FilePath
    /// The byte offset in `path` where the damage starts.
    package var offset: Int64
    /// What was wrong.
    package var reason: String
    /// Where the damaged bytes were moved, if they were.
    package var quarantinedTo: FilePath?
    /// How many bytes from `offset` were damaged, when known: for a damaged range in the
    /// middle of a segment, up to the next valid record (the records after it are kept);
    /// for damage with nothing valid after it, up to the end of the file.
    package var length: Int64?

    /// Creates a report.
    package init(peer: String?, path: FilePath, offset: Int64, reason: String, quarantinedTo: FilePath?, length: Int64? = nil) {
        self.peer = peer
        self.path = path
        self.offset = offset
        self.reason = reason
        self.quarantinedTo = quarantinedTo
        self.length = length
    }

    package var description: String {
        "\(path) at byte \(offset): \(reason)" + (quarantinedTo.map { "; moved to \($0)" } ?? "")
    }
}
