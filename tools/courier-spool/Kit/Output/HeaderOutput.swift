import CourierSpool

/// A record's headers as the listings show them: in JSON an object, name to value, in the
/// record's order (`{}` for none); in a table one cell of `name: value` pairs, escaped and
/// cut as a payload preview is (`-` for none).
enum HeaderOutput {
    /// The headers of an encoded block. The spool inspector hands out only blocks that
    /// validated (a record whose block does not read comes with none), so none is lost here.
    static func pairs(_ block: [UInt8]) -> [(name: String, value: String)] {
        HeaderBlock.decode(block) ?? []
    }

    /// `"headers": {name: value, …}`.
    static func member(_ block: [UInt8]) -> (String, JSON) {
        ("headers", .object(pairs(block).map { ($0.name, .string($0.value)) }))
    }

    /// `name: value, name: value`, through ``Preview`` (control characters escaped, cut at
    /// `limit` characters with `…`), or `-` when there are none.
    static func preview(_ block: [UInt8], limit: Int = 60) -> String {
        let pairs = pairs(block)
        guard !pairs.isEmpty else { return "-" }
        return Preview.of(Array(pairs.map { "\($0.name): \($0.value)" }.joined(separator: ", ").utf8), limit: limit)
    }
}
