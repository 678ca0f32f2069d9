/// A payload shown on one line: text as it is with control characters escaped (`\n`, `\t`,
/// `\u{1B}`); anything that is not UTF-8 as printable ASCII with every other byte as `\xNN`.
/// A backslash is written `\\`, so the preview is never ambiguous. Cut at `limit`
/// characters, with `…` when cut.
enum Preview {
    static func of(_ payload: [UInt8], limit: Int = 40) -> String {
        var pieces: [String] = []
        if let text = String(validating: payload, as: UTF8.self) {
            for scalar in text.unicodeScalars {
                pieces.append(escape(scalar))
                if pieces.count > limit { break }
            }
        } else {
            for byte in payload {
                switch byte {
                case UInt8(ascii: "\\"): pieces.append("\\\\")
                case 0x20..<0x7F: pieces.append(String(UnicodeScalar(byte)))
                default: pieces.append("\\x" + hex(byte))
                }
                if pieces.count > limit { break }
            }
        }
        if pieces.count > limit { return pieces.prefix(limit).joined() + "…" }
        return pieces.joined()
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\\": return "\\\\"
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                || scalar.properties.generalCategory == .lineSeparator || scalar.properties.generalCategory == .paragraphSeparator {
                return "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
            return String(scalar)
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
