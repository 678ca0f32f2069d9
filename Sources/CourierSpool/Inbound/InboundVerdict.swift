/// A receiver's verdict on one number other than processed (the application rejected it, or
/// it expired on arrival), kept durable in the inbound journal until the sender has heard it
/// (docs/PROTOCOL.md, "Answer = retained verdicts, then WELCOME").
package struct InboundVerdict: Sendable, Hashable {
    /// The wire protocol's outcome code (1 rejected, 2 expired).
    package var code: UInt8
    /// The reason, UTF-8, at most 1,024 bytes as sent.
    package var reason: String

    package init(code: UInt8, reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The journal body (docs/SPOOL-FORMAT.md, "inbound.journal"): `u8 sender length,
    /// sender (UTF-8), u64 stream id, u64 sequence number, u8 code, u16 reason length,
    /// reason (UTF-8)`.
    static func encodedBody(_ key: InboundStreamKey, sequence: UInt64, verdict: InboundVerdict) -> [UInt8] {
        var writer = ByteWriter(capacity: 20 + key.sender.utf8.count + verdict.reason.utf8.count)
        encodeBody(key, sequence: sequence, verdict: verdict, into: &writer)
        return writer.bytes
    }

    /// Writes a verdict record's body at the end of `writer`.
    static func encodeBody(_ key: InboundStreamKey, sequence: UInt64, verdict: InboundVerdict, into writer: inout ByteWriter) {
        let nameAt = writer.bytes.count
        writer.u8(0)
        let nameLength = writer.utf8(key.sender, limit: 255)
        writer.bytes[nameAt] = UInt8(nameLength)
        writer.u64(key.streamID)
        writer.u64(sequence)
        writer.u8(verdict.code)
        let reasonAt = writer.bytes.count
        writer.u16(0)
        let length = writer.utf8(verdict.reason, limit: Int(UInt16.max))
        writer.patchU16(UInt16(length), at: reasonAt)
    }

    /// Decodes a verdict record's body; nil when its layout is impossible.
    static func decode(body: [UInt8]) -> (key: InboundStreamKey, sequence: UInt64, verdict: InboundVerdict)? {
        body.withUnsafeBytes { raw in
            guard raw.count >= 1 else { return nil }
            let nameLength = Int(raw[0])
            let fixed = 1 + nameLength + 19
            guard nameLength > 0, raw.count >= fixed,
                  let sender = String(validating: raw[1..<(1 + nameLength)], as: UTF8.self) else { return nil }
            let reasonLength = Int(raw.u16(at: fixed - 2))
            guard raw.count == fixed + reasonLength,
                  let reason = String(validating: raw[fixed...], as: UTF8.self) else { return nil }
            let key = InboundStreamKey(sender: sender, streamID: raw.u64(at: 1 + nameLength))
            return (key, raw.u64(at: 1 + nameLength + 8), InboundVerdict(code: raw[1 + nameLength + 16], reason: reason))
        }
    }
}
