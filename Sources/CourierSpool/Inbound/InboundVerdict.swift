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
        let name = Array(key.sender.utf8.prefix(255))
        let reason = Array(verdict.reason.utf8.prefix(Int(UInt16.max)))
        var writer = ByteWriter(capacity: 20 + name.count + reason.count)
        writer.u8(UInt8(name.count))
        writer.append(name)
        writer.u64(key.streamID)
        writer.u64(sequence)
        writer.u8(verdict.code)
        writer.u16(UInt16(reason.count))
        writer.append(reason)
        return writer.bytes
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
