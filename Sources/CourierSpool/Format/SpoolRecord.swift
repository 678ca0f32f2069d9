/// One message record read back from an outbound log.
public struct SpoolRecord: Sendable, Hashable {
    /// The record's sequence number in its stream (1, 2, 3, … with no gaps).
    public var sequenceNumber: UInt64
    /// When the record was appended, in nanoseconds since the Unix epoch.
    public var enqueuedAt: Int64
    /// When the record expires, in nanoseconds since the Unix epoch; `nil` if never.
    public var expiresAt: Int64?
    /// The attempt count stored with the record (0 for a first append; a requeued dead
    /// letter keeps the count it had). The log is append-only: attempts made after the
    /// append are the node's to count in memory.
    public var attempt: UInt32
    /// Application flags, stored verbatim.
    public var flags: UInt16
    /// The message body.
    public var payload: [UInt8]

    /// Creates a record.
    public init(sequenceNumber: UInt64, enqueuedAt: Int64, expiresAt: Int64?, attempt: UInt32, flags: UInt16, payload: [UInt8]) {
        self.sequenceNumber = sequenceNumber
        self.enqueuedAt = enqueuedAt
        self.expiresAt = expiresAt
        self.attempt = attempt
        self.flags = flags
        self.payload = payload
    }
}

/// A message to append to an outbound log.
public struct SpoolEntry: Sendable, Hashable {
    /// The message body.
    public var payload: [UInt8]
    /// When the message expires, in nanoseconds since the Unix epoch; `nil` if never.
    public var expiresAt: Int64?
    /// Application flags, stored verbatim.
    public var flags: UInt16
    /// The attempt count to store (0 for a new message).
    public var attempt: UInt32

    /// Creates an entry.
    public init(payload: [UInt8], expiresAt: Int64? = nil, flags: UInt16 = 0, attempt: UInt32 = 0) {
        self.payload = payload
        self.expiresAt = expiresAt
        self.flags = flags
        self.attempt = attempt
    }

    /// The number of bytes the record takes on disk.
    public var encodedSize: Int { RecordFormat.headerSize + payload.count }
}
