/// A record the sender gave up on, kept in the peer's dead-letter store.
package struct DeadLetter: Sendable, Hashable {
    /// The dead letter's id in its store (increasing; never reused within the store).
    package var id: UInt64
    /// The record as it was in the log (its original sequence number, times and payload).
    package var record: SpoolRecord
    /// The stream the record was sent on.
    package var streamID: UInt64
    /// Why it was given up on.
    package var reason: DeadLetterReason
    /// When it was put here, in nanoseconds since the Unix epoch.
    package var deadLetteredAt: Int64

    /// Creates a dead letter.
    package init(id: UInt64, record: SpoolRecord, streamID: UInt64, reason: DeadLetterReason, deadLetteredAt: Int64) {
        self.id = id
        self.record = record
        self.streamID = streamID
        self.reason = reason
        self.deadLetteredAt = deadLetteredAt
    }

    /// Writes the body of a dead-letter record (see docs/SPOOL-FORMAT.md, "deadletters.log")
    /// at the end of `writer`: `u64 original sequence, u64 stream id, i64 original enqueue
    /// time, u8 reason kind, u16 reason length, reason (UTF-8)`, then the message's body as a
    /// message record holds it (its header block first when the record's flags say so).
    func encodeBody(into writer: inout ByteWriter) {
        writer.u64(record.sequenceNumber)
        writer.u64(streamID)
        writer.i64(record.enqueuedAt)
        writer.u8(reason.kind.code)
        let lengthAt = writer.bytes.count
        writer.u16(0)
        let length = writer.utf8(reason.text, limit: Int(UInt16.max))
        writer.patchU16(UInt16(length), at: lengthAt)
        MessageBody.write(headers: record.headers, payload: record.payload, into: &writer)
    }

    /// The stream, original sequence number and reason of a dead-letter record's body,
    /// without its payload.
    static func outcome(body: [UInt8]) -> (stream: UInt64, sequence: UInt64, reason: DeadLetterReason)? {
        body.withUnsafeBytes { raw in
            guard raw.count >= 27 else { return nil }
            let textLength = Int(raw.u16(at: 25))
            guard raw.count >= 27 + textLength else { return nil }
            let text = String(decoding: raw[27..<(27 + textLength)], as: UTF8.self)
            return (raw.u64(at: 8), raw.u64(at: 0), DeadLetterReason(kind: DeadLetterReason.Kind(code: raw[24]), text: text))
        }
    }

    static func decode(header: RecordFormat.Header, body: [UInt8]) -> DeadLetter? {
        body.withUnsafeBytes { raw -> DeadLetter? in
            guard raw.count >= 27 else { return nil }
            let textLength = Int(raw.u16(at: 25))
            guard raw.count >= 27 + textLength else { return nil }
            let text = String(decoding: raw[27..<(27 + textLength)], as: UTF8.self)
            guard case .success(let (headers, payload)) = MessageBody.split(UnsafeRawBufferPointer(rebasing: raw[(27 + textLength)...]),
                                                                         flags: header.flags) else { return nil }
            let record = SpoolRecord(
                sequenceNumber: raw.u64(at: 0),
                enqueuedAt: raw.i64(at: 16),
                expiresAt: header.expiresAt == 0 ? nil : header.expiresAt,
                attempt: header.attempt,
                flags: header.flags,
                headers: headers,
                payload: payload
            )
            return DeadLetter(
                id: header.sequenceNumber,
                record: record,
                streamID: raw.u64(at: 8),
                reason: DeadLetterReason(kind: DeadLetterReason.Kind(code: raw[24]), text: text),
                deadLetteredAt: header.enqueuedAt
            )
        }
    }
}
