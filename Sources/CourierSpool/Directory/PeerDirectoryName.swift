/// How a peer id (UTF-8, 1–255 bytes) becomes a directory name, and back.
///
/// Bytes `A–Z a–z 0–9 - _ .` stay as they are (a leading `.` excepted); every other byte
/// becomes `%XX` (uppercase hex). `~` prefixes the name so that nothing the spool makes
/// itself (`quarantine`, `lost+found`) can clash. The longest result (255 bytes, all
/// escaped) is 1 + 765 bytes, longer than most file systems allow (255), so names whose
/// encoding exceeds 200 bytes are instead `#` + the hex of the id's bytes truncated to 120
/// bytes + `-` + a 64-bit FNV-1a hash of the whole id; the full id is then kept in the
/// directory's `peer-id` file (written for every peer).
package enum PeerDirectoryName {
    static let maxEncodedLength = 200

    /// Checks a peer id: 1 to 255 bytes of UTF-8.
    package static func validate(_ peer: String) throws(SpoolError) {
        let count = peer.utf8.count
        guard count >= 1, count <= 255 else {
            throw SpoolError(code: .invalidArgument, message: "a peer id must be 1 to 255 bytes of UTF-8; got \(count) bytes")
        }
    }

    /// The directory name for `peer`.
    package static func encode(_ peer: String) -> String {
        var name = "~"
        for (index, byte) in peer.utf8.enumerated() {
            let plain = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2D || byte == 0x5F || (byte == 0x2E && index > 0)
            if plain {
                name.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                name += "%" + hexByte(byte)
            }
        }
        if name.utf8.count <= maxEncodedLength { return name }
        var long = "#"
        for byte in peer.utf8.prefix(60) { long += hexByte(byte) }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in peer.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return long + "-" + hex(hash)
    }

    /// The peer id a `~` directory name encodes; `nil` for `#` names (read `peer-id`) and
    /// for names that are not peer directories.
    package static func decode(_ name: String) -> String? {
        guard name.hasPrefix("~") else { return nil }
        var bytes: [UInt8] = []
        var iterator = name.utf8.dropFirst().makeIterator()
        while let byte = iterator.next() {
            if byte == 0x25 {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }
}
