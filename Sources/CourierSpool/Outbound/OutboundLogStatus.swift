/// A snapshot of one outbound log's counters, cheap to take (no I/O).
public struct OutboundLogStatus: Sendable, Hashable {
    /// The peer the log sends to.
    public var peer: String
    /// The stream id (nonzero, random, created with the log).
    public var streamID: UInt64
    /// The sequence number the next append will get.
    public var nextSequenceNumber: UInt64
    /// Every sequence number up to this one is acknowledged.
    public var acknowledgedUpTo: UInt64
    /// Records held and not yet acknowledged.
    public var pendingCount: Int
    /// Bytes those records take on disk (headers included).
    public var pendingBytes: Int64
    /// When the oldest pending record was appended (ns since the Unix epoch); `nil` when
    /// nothing is pending. Refreshed by the spool thread shortly after an acknowledgement.
    public var oldestPendingEnqueuedAt: Int64?
    /// Sequence numbers above the acknowledged mark that are missing from the log because
    /// their records were quarantined as corrupt. They will never be returned; the node
    /// should treat them as lost.
    public var missingRanges: [ClosedRange<UInt64>]
    /// Segment files in use.
    public var segmentCount: Int
    /// Appends waiting in the queue (for the writer, or for space).
    public var queuedAppends: Int
    /// Appends completed since the log was opened.
    public var appendsCompleted: Int
    /// `fdatasync` calls on segments since the log was opened.
    public var syncs: Int
    /// Records covered by those syncs.
    public var recordsSynced: Int
}
