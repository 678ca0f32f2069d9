public import SystemPackage

/// One peer's outbound log as seen by ``SpoolInspector``.
public struct PeerSpoolStatus: Sendable, Hashable {
    /// The peer.
    public var peer: String
    /// The peer's directory.
    public var directory: FilePath
    /// The stream id, `nil` if the meta file is unreadable.
    public var streamID: UInt64?
    /// The sequence number the next append would get (as far as the files tell).
    public var nextSequenceNumber: UInt64
    /// Every sequence number up to this one is acknowledged (as last written to disk; the
    /// running node may be ahead by a few milliseconds).
    public var acknowledgedUpTo: UInt64
    /// Records held above the acknowledged mark.
    public var pendingCount: Int
    /// Bytes they take.
    public var pendingBytes: Int64
    /// When the oldest pending record was appended (ns since the Unix epoch).
    public var oldestPendingEnqueuedAt: Int64?
    /// Segment files.
    public var segmentCount: Int
    /// Spare segment files: acknowledged segments kept for reuse at the next roll (up to
    /// ``SpoolConfiguration/spareSegments``), deleted after 10 seconds unused
    /// (docs/SPOOL-FORMAT.md, "Spare segments"). They hold no pending record.
    public var spareFileCount: Int = 0
    /// Bytes the spare files take.
    public var spareBytes: Int64 = 0
    /// Dead letters held.
    public var deadLetterCount: Int
    /// Files in the peer's `quarantine/` directory.
    public var quarantinedFiles: [FilePath]
}

/// A data directory as seen by ``SpoolInspector``.
public struct SpoolStatus: Sendable, Hashable {
    /// Every peer with an outbound log.
    public var peers: [PeerSpoolStatus]
    /// Every inbound stream's deduplication state (as last written to disk).
    public var inbound: [InboundStreamState]
    /// The pid in the `LOCK` file, if any (the node may or may not be running).
    public var lockHolderPID: Int32?
}

/// One problem ``SpoolInspector/verify(progress:)`` found.
public struct SpoolProblem: Sendable, Hashable, CustomStringConvertible {
    /// The damaged file.
    public var path: FilePath
    /// The byte offset where the damage starts.
    public var offset: Int64
    /// What is wrong.
    public var reason: String
    /// How many bytes from `offset` are damaged, when known: up to the next valid record for
    /// damage in the middle of a segment (the records after it are intact), else up to the
    /// end of the file.
    public var length: Int64?

    /// Creates a problem.
    public init(path: FilePath, offset: Int64, reason: String, length: Int64? = nil) {
        self.path = path
        self.offset = offset
        self.reason = reason
        self.length = length
    }

    public var description: String { "\(path) at byte \(offset): \(reason)" }
}

/// What ``SpoolInspector/verify(progress:)`` found.
public struct SpoolVerifyReport: Sendable, Hashable {
    /// Corruption found: checksum failures and impossible headers, each with file and offset.
    public var problems: [SpoolProblem]
    /// Partial records at the end of a newest segment or journal: an append in progress, or
    /// the remains of a crash that the next open truncates. Not corruption.
    public var incompleteTails: [SpoolProblem]
    /// Damage found earlier and already moved aside.
    public var quarantinedFiles: [FilePath]
    /// Files read.
    public var filesChecked: Int
    /// Records verified.
    public var recordsChecked: Int
    /// Bytes read.
    public var bytesChecked: Int64

    /// Whether no corruption was found (quarantined files aside).
    public var isClean: Bool { problems.isEmpty }
}

/// A record with where it is, as ``SpoolInspector/records(peer:from:limit:includeAcknowledged:)`` returns it.
public struct InspectedRecord: Sendable, Hashable {
    /// The record.
    public var record: SpoolRecord
    /// Whether it is at or below the acknowledged mark (garbage awaiting segment deletion).
    public var acknowledged: Bool
    /// The segment file.
    public var path: FilePath
    /// Its byte offset there.
    public var offset: Int64
}
