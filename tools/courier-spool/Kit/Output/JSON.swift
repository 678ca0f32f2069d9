/// A JSON value with its object keys in the order written, so that `--json` output reads
/// in the same order as the human table. Numbers stay numbers; stream ids, which use all 64
/// bits and would lose precision as JSON numbers in many parsers, are written as
/// hexadecimal strings, as `courier-consumer` writes them.
enum JSON: Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func == (lhs: JSON, rhs: JSON) -> Bool { lhs.rendered() == rhs.rendered() }

    static func int(_ value: Int) -> JSON { .int(Int64(value)) }

    /// The value as text: indented by two spaces per level when `pretty`.
    func rendered(pretty: Bool = true) -> String {
        var text = ""
        render(into: &text, pretty: pretty, level: 0)
        return text
    }

    private func render(into text: inout String, pretty: Bool, level: Int) {
        switch self {
        case .null: text += "null"
        case .bool(let value): text += value ? "true" : "false"
        case .int(let value): text += String(value)
        case .unsigned(let value): text += String(value)
        case .double(let value): text += value.isFinite ? String(value) : "null"
        case .string(let value): JSON.quote(value, into: &text)
        case .array(let values):
            guard !values.isEmpty else { text += "[]"; return }
            text += "["
            for (index, value) in values.enumerated() {
                if index > 0 { text += "," }
                newline(&text, pretty: pretty, level: level + 1)
                value.render(into: &text, pretty: pretty, level: level + 1)
            }
            newline(&text, pretty: pretty, level: level)
            text += "]"
        case .object(let members):
            guard !members.isEmpty else { text += "{}"; return }
            text += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { text += "," }
                newline(&text, pretty: pretty, level: level + 1)
                JSON.quote(key, into: &text)
                text += pretty ? ": " : ":"
                value.render(into: &text, pretty: pretty, level: level + 1)
            }
            newline(&text, pretty: pretty, level: level)
            text += "}"
        }
    }

    private func newline(_ text: inout String, pretty: Bool, level: Int) {
        guard pretty else { return }
        text += "\n" + String(repeating: "  ", count: level)
    }

    /// Appends `string` as a JSON string literal.
    static func quote(_ string: String, into text: inout String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                text += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    /// A payload: `"payload"` as a string when it is UTF-8, else `"payload_base64"`.
    static func payloadMember(_ payload: [UInt8]) -> (String, JSON) {
        if let text = String(validating: payload, as: UTF8.self) { return ("payload", .string(text)) }
        return ("payload_base64", .string(Base64.encode(payload)))
    }
}

/// Standard base64 with padding (RFC 4648 §4).
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var chunk: UInt32 = 0
            for offset in 0..<3 { chunk = chunk << 8 | UInt32(offset < count ? bytes[index + offset] : 0) }
            for position in 0..<4 {
                if position <= count {
                    out.append(alphabet[Int(chunk >> UInt32(18 - 6 * position) & 0x3F)])
                } else {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
