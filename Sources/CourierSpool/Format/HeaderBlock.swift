/// A message's headers in the one binary form the spool stores and protocol version 2
/// carries (docs/SPOOL-FORMAT.md, "Headers"; docs/PROTOCOL.md, DATA):
///
/// ```
/// u8  count of headers, 1 … 64
/// per header:
///   u8   name length, 1 … 255
///   …    name (UTF-8)
///   u16  value length, 0 … 4096
///   …    value (UTF-8)
/// ```
///
/// Names are unique (compared byte for byte) and the whole block is at most 16 KiB. An empty
/// list has no block at all (zero bytes). Bytes from the disk or the network are checked with
/// ``validate(_:)`` before anything trusts them.
package enum HeaderBlock {
    package static let maxCount = 64
    package static let maxNameBytes = 255
    package static let maxValueBytes = 4096
    package static let maxBytes = 16 << 10

    /// Encodes `headers`, which the caller has checked against the limits (``problem(with:)``).
    package static func encode(_ headers: [(name: String, value: String)]) -> [UInt8] {
        guard !headers.isEmpty else { return [] }
        var writer = ByteWriter(capacity: 1 + headers.reduce(0) { $0 + 3 + $1.name.utf8.count + $1.value.utf8.count })
        writer.u8(UInt8(truncatingIfNeeded: headers.count))
        for (name, value) in headers {
            writer.u8(UInt8(truncatingIfNeeded: name.utf8.count))
            writer.utf8(name, limit: maxNameBytes)
            writer.u16(UInt16(truncatingIfNeeded: value.utf8.count))
            writer.utf8(value, limit: maxValueBytes)
        }
        return writer.bytes
    }

    /// Why `headers` cannot be encoded, or nil when they can: too many, an empty or too long
    /// name, a repeated name, a too long value, or a block above ``maxBytes``.
    package static func problem(with headers: [(name: String, value: String)]) -> String? {
        guard headers.count <= maxCount else { return "\(headers.count) headers, above the limit of \(maxCount)" }
        var total = headers.isEmpty ? 0 : 1
        var seen = Set<String>()
        for (name, value) in headers {
            let nameBytes = name.utf8.count
            guard nameBytes >= 1 else { return "a header with an empty name" }
            guard nameBytes <= maxNameBytes else { return "header name of \(nameBytes) bytes, above the limit of \(maxNameBytes)" }
            guard value.utf8.count <= maxValueBytes else {
                return "header \"\(name)\" has a value of \(value.utf8.count) bytes, above the limit of \(maxValueBytes)"
            }
            guard seen.insert(name).inserted else { return "header \"\(name)\" appears twice" }
            total += 3 + nameBytes + value.utf8.count
        }
        guard total <= maxBytes else { return "headers of \(total) bytes, above the limit of \(maxBytes)" }
        return nil
    }

    /// Why `block` is not a well-formed header block, or nil when it is (every length inside
    /// the block, each count and length within its limit, names non-empty, unique and UTF-8,
    /// values UTF-8, nothing left over).
    package static func validate(_ block: UnsafeRawBufferPointer) -> String? {
        guard !block.isEmpty else { return "empty header block" }
        guard block.count <= maxBytes else { return "header block of \(block.count) bytes, above the limit of \(maxBytes)" }
        let count = Int(block[0])
        guard count >= 1, count <= maxCount else { return "header count \(count) outside 1…\(maxCount)" }
        var position = 1
        var names = Set<ArraySlice<UInt8>>()
        for _ in 0..<count {
            guard position < block.count else { return "header block ends inside a header" }
            let nameLength = Int(block[position])
            guard nameLength >= 1 else { return "a header with an empty name" }
            guard position + 1 + nameLength + 2 <= block.count else { return "header name runs past the block" }
            let name = Array(block[(position + 1)..<(position + 1 + nameLength)])[...]
            guard String(validating: name, as: UTF8.self) != nil else { return "header name is not UTF-8" }
            guard names.insert(name).inserted else { return "a header name appears twice" }
            position += 1 + nameLength
            let valueLength = Int(block.u16(at: position))
            position += 2
            guard valueLength <= maxValueBytes else { return "header value of \(valueLength) bytes, above the limit of \(maxValueBytes)" }
            guard position + valueLength <= block.count else { return "header value runs past the block" }
            guard String(validating: block[position..<(position + valueLength)], as: UTF8.self) != nil else {
                return "header value is not UTF-8"
            }
            position += valueLength
        }
        guard position == block.count else { return "\(block.count - position) bytes after the last header" }
        return nil
    }

    /// The headers of a block that ``validate(_:)`` accepted, in their order (an empty block:
    /// none). A block that does not validate gives nil.
    package static func decode(_ block: some Collection<UInt8>) -> [(name: String, value: String)]? {
        let bytes = Array(block)
        guard !bytes.isEmpty else { return [] }
        return bytes.withUnsafeBytes { raw -> [(name: String, value: String)]? in
            guard validate(raw) == nil else { return nil }
            var headers: [(name: String, value: String)] = []
            headers.reserveCapacity(Int(raw[0]))
            var position = 1
            for _ in 0..<Int(raw[0]) {
                let nameLength = Int(raw[position])
                let name = String(decoding: raw[(position + 1)..<(position + 1 + nameLength)], as: UTF8.self)
                position += 1 + nameLength
                let valueLength = Int(raw.u16(at: position))
                position += 2
                headers.append((name, String(decoding: raw[position..<(position + valueLength)], as: UTF8.self)))
                position += valueLength
            }
            return headers
        }
    }
}

/// The body of a message record, and the message part of a dead letter's body: the payload,
/// preceded, when the record's flags have ``headersFlag``, by `u16 length` and the header
/// block (docs/SPOOL-FORMAT.md, "Headers"). Records written before headers existed never have
/// the flag, so they read as they always did.
package enum MessageBody {
    /// Record flag bit 0: the body starts with the message's headers.
    package static let headersFlag: UInt16 = 0x0001

    /// The flags to store for a message with `headers` (an encoded block, empty for none).
    static func flags(_ flags: UInt16, headers: [UInt8]) -> UInt16 {
        headers.isEmpty ? flags & ~headersFlag : flags | headersFlag
    }

    /// Bytes the headers add to a body.
    static func overhead(headers: [UInt8]) -> Int { headers.isEmpty ? 0 : 2 + headers.count }

    static func write(headers: [UInt8], payload: [UInt8], into writer: inout ByteWriter) {
        if !headers.isEmpty {
            writer.u16(UInt16(truncatingIfNeeded: headers.count))
            writer.append(headers)
        }
        writer.append(payload)
    }

    /// The headers block and the payload of `body`, or why they cannot be read (the flag is set
    /// and the length runs past the body, or the block is malformed).
    static func split(_ body: UnsafeRawBufferPointer, flags: UInt16) -> Result<(headers: [UInt8], payload: [UInt8]), SplitError> {
        guard flags & headersFlag != 0 else { return .success(([], Array(body))) }
        guard body.count >= 2 else { return .failure(SplitError(reason: "body too short for its header block's length")) }
        let length = Int(body.u16(at: 0))
        guard 2 + length <= body.count else { return .failure(SplitError(reason: "header block of \(length) bytes runs past the body")) }
        let block = UnsafeRawBufferPointer(rebasing: body[2..<(2 + length)])
        if let problem = HeaderBlock.validate(block) { return .failure(SplitError(reason: problem)) }
        return .success((Array(block), Array(body[(2 + length)...])))
    }

    struct SplitError: Error {
        var reason: String
    }
}
