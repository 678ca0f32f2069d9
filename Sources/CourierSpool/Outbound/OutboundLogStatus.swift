/// A snapshot of one outbound log's counters, cheap to take (no I/O).
package struct OutboundLogStatus: Sendable, Hashable {
    /// The peer the log sends to.
    package var peer: String
    /// The stream id (nonzero, random, created with the log).
    package var streamID: UInt64
    /// The sequence number the next append will get.
    package var nextSequenceNumber: UInt64
    /// Every sequence number up to this one is acknowledged.
    package var acknowledgedUpTo: UInt64
    /// Records held and not yet acknowledged.
    package var pendingCount: Int
    /// Bytes those records take on disk (headers included).
    package var pendingBytes: Int64
    /// When the oldest pending record was appended (ns since the Unix epoch); `nil` when
    /// nothing is pending. Refreshed by the spool thread shortly after an acknowledgement.
    package var oldestPendingEnqueuedAt: Int64?
    /// Sequence numbers above the acknowledged mark that are missing from the log because
    /// their records were quarantined as corrupt. They will never be returned; the node
    /// should treat them as lost.
    package var missingRanges: [ClosedRange<UInt64>]
    /// Segment files in use.
    package var segmentCount: Int
    /// Appends waiting in the queue (for the writer, or for space).
    package var queuedAppends: Int
    /// Appends completed since the log was opened.
    package var appendsCompleted: Int
    /// `fdatasync` calls on segments since the log was opened.
    package var syncs: Int
    /// Records covered by those syncs.
    package var recordsSynced: Int
}
