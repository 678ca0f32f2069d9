/// One message record read back from an outbound log.
package struct SpoolRecord: Sendable, Hashable {
    /// The record's sequence number in its stream (1, 2, 3, … with no gaps).
    package var sequenceNumber: UInt64
    /// When the record was appended, in nanoseconds since the Unix epoch.
    package var enqueuedAt: Int64
    /// When the record expires, in nanoseconds since the Unix epoch; `nil` if never.
    package var expiresAt: Int64?
    /// The attempt count stored with the record (0 for a first append; a requeued dead
    /// letter keeps the count it had). The log is append-only: attempts made after the
    /// append are the node's to count in memory.
    package var attempt: UInt32
    /// The record's flags other than ``MessageBody/headersFlag`` (which says whether
    /// ``headers`` is empty), stored verbatim.
    package var flags: UInt16
    /// The message's headers, an encoded ``HeaderBlock`` (empty: none).
    package var headers: [UInt8]
    /// The message body.
    package var payload: [UInt8]

    /// Creates a record.
    package init(sequenceNumber: UInt64, enqueuedAt: Int64, expiresAt: Int64?, attempt: UInt32, flags: UInt16,
                 headers: [UInt8] = [], payload: [UInt8]) {
        self.sequenceNumber = sequenceNumber
        self.enqueuedAt = enqueuedAt
        self.expiresAt = expiresAt
        self.attempt = attempt
        self.flags = flags & ~MessageBody.headersFlag
        self.headers = headers
        self.payload = payload
    }
}

/// A message to append to an outbound log.
package struct SpoolEntry: Sendable, Hashable {
    /// The message body.
    package var payload: [UInt8]
    /// When the message expires, in nanoseconds since the Unix epoch; `nil` if never.
    package var expiresAt: Int64?
    /// Flags to store (``MessageBody/headersFlag`` follows ``headers``).
    package var flags: UInt16
    /// The attempt count to store (0 for a new message).
    package var attempt: UInt32
    /// The message's headers, an encoded ``HeaderBlock`` (empty: none).
    package var headers: [UInt8]

    /// Creates an entry.
    package init(payload: [UInt8], expiresAt: Int64? = nil, flags: UInt16 = 0, attempt: UInt32 = 0, headers: [UInt8] = []) {
        self.payload = payload
        self.expiresAt = expiresAt
        self.flags = flags & ~MessageBody.headersFlag
        self.attempt = attempt
        self.headers = headers
    }

    /// The number of bytes the record takes on disk.
    package var encodedSize: Int { RecordFormat.headerSize + MessageBody.overhead(headers: headers) + payload.count }

    /// Writes the record's body (headers, payload) at the end of `writer`.
    func writeBody(into writer: inout ByteWriter) {
        MessageBody.write(headers: headers, payload: payload, into: &writer)
    }

    /// The flags to store with the record.
    var storedFlags: UInt16 { MessageBody.flags(flags, headers: headers) }
}
