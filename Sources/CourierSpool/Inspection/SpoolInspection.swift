import SystemPackage

/// One peer's outbound log as seen by ``SpoolInspector``.
package struct PeerSpoolStatus: Sendable, Hashable {
    /// The peer.
    package var peer: String
    /// The peer's directory.
    package var directory: FilePath
    /// The stream id, `nil` if the meta file is unreadable.
    package var streamID: UInt64?
    /// The sequence number the next append would get (as far as the files tell).
    package var nextSequenceNumber: UInt64
    /// Every sequence number up to this one is acknowledged (as last written to disk; the
    /// running node may be ahead by a few milliseconds).
    package var acknowledgedUpTo: UInt64
    /// Records held above the acknowledged mark.
    package var pendingCount: Int
    /// Bytes they take.
    package var pendingBytes: Int64
    /// When the oldest pending record was appended (ns since the Unix epoch).
    package var oldestPendingEnqueuedAt: Int64?
    /// Segment files.
    package var segmentCount: Int
    /// Spare segment files: acknowledged segments kept for reuse at the next roll (up to
    /// ``SpoolConfiguration/spareSegments``), deleted after 10 seconds unused
    /// (docs/SPOOL-FORMAT.md, "Spare segments"). They hold no pending record.
    package var spareFileCount: Int = 0
    /// Bytes the spare files take.
    package var spareBytes: Int64 = 0
    /// Dead letters held.
    package var deadLetterCount: Int
    /// Files in the peer's `quarantine/` directory.
    package var quarantinedFiles: [FilePath]
}

/// A data directory as seen by ``SpoolInspector``.
package struct SpoolStatus: Sendable, Hashable {
    /// Every peer with an outbound log.
    package var peers: [PeerSpoolStatus]
    /// Every inbound stream's deduplication state (as last written to disk).
    package var inbound: [InboundStreamState]
    /// The pid in the `LOCK` file, if any (the node may or may not be running).
    package var lockHolderPID: Int32?
}

/// One problem ``SpoolInspector/verify(progress:)`` found.
package struct SpoolProblem: Sendable, Hashable, CustomStringConvertible {
    /// The damaged file.
    package var path: FilePath
    /// The byte offset where the damage starts.
    package var offset: Int64
    /// What is wrong.
    package var reason: String
    /// How many bytes from `offset` are damaged, when known: up to the next valid record for
    /// damage in the middle of a segment (the records after it are intact), else up to the
    /// end of the file.
    package var length: Int64?

    /// Creates a problem.
    package init(path: FilePath, offset: Int64, reason: String, length: Int64? = nil) {
        self.path = path
        self.offset = offset
        self.reason = reason
        self.length = length
    }

    package var description: String { "\(path) at byte \(offset): \(reason)" }
}

/// What ``SpoolInspector/verify(progress:)`` found.
package struct SpoolVerifyReport: Sendable, Hashable {
    /// Corruption found: checksum failures and impossible headers, each with file and offset.
    package var problems: [SpoolProblem]
    /// Partial records at the end of a newest segment or journal: an append in progress, or
    /// the remains of a crash that the next open truncates. Not corruption.
    package var incompleteTails: [SpoolProblem]
    /// Damage found earlier and already moved aside.
    package var quarantinedFiles: [FilePath]
    /// Files read.
    package var filesChecked: Int
    /// Records verified.
    package var recordsChecked: Int
    /// Bytes read.
    package var bytesChecked: Int64

    /// Whether no corruption was found (quarantined files aside).
    package var isClean: Bool { problems.isEmpty }
}

/// A record with where it is, as ``SpoolInspector/records(peer:from:limit:includeAcknowledged:)`` returns it.
package struct InspectedRecord: Sendable, Hashable {
    /// The record.
    package var record: SpoolRecord
    /// Whether it is at or below the acknowledged mark (garbage awaiting segment deletion).
    package var acknowledged: Bool
    /// The segment file.
    package var path: FilePath
    /// Its byte offset there.
    package var offset: Int64
}
