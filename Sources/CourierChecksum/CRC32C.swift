import CCourierCRC

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the CPU's instruction where there
/// is one (SSE 4.2, ARMv8 CRC), otherwise a portable slicing-by-8 table.
///
/// Every wire frame (the codec in Courier) and every record, file header and state slot in
/// the spool carries one; this module is the one both use. `package`: part of no product's
/// public API. The check value is `CRC32C.checksum("123456789") == 0xE3069283`.
package enum CRC32C {
    /// Whether ``update(_:_:)`` uses the CPU's instruction on this machine.
    package static let usesHardware = courier_crc32c_hardware_available() != 0

    /// Eight 256-entry tables, flattened: table `k` occupies `[k * 256 ..< (k + 1) * 256]`.
    private static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 {
                c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1
            }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 {
                let previous = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
        return t
    }()

    /// The CRC-32C of `bytes`.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, bytes)
    }

    /// The CRC-32C of a byte sequence.
    package static func checksum<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
        let array = Array(bytes)
        return array.withUnsafeBytes { checksum($0) }
    }

    /// Continues a CRC-32C: `update(checksum(a), b) == checksum(a + b)`.
    package static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard !usesHardware else {
            guard let base = bytes.baseAddress else { return crc }
            return ~courier_crc32c_hardware(~crc, base, bytes.count)
        }
        return portableUpdate(crc, bytes)
    }

    /// ``update(_:_:)`` with the table alone (also what machines without the instruction use).
    package static func portableUpdate(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        tables.withUnsafeBufferPointer { table in
            var c = ~crc
            var index = 0
            let count = bytes.count
            while count - index >= 8 {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                    ^ UInt64(c)
                c = table[7 * 256 + Int(word & 0xFF)]
                    ^ table[6 * 256 + Int((word >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((word >> 16) & 0xFF)]
                    ^ table[4 * 256 + Int((word >> 24) & 0xFF)]
                    ^ table[3 * 256 + Int((word >> 32) & 0xFF)]
                    ^ table[2 * 256 + Int((word >> 40) & 0xFF)]
                    ^ table[1 * 256 + Int((word >> 48) & 0xFF)]
                    ^ table[Int(word >> 56)]
                index += 8
            }
            while index < count {
                c = table[Int((c ^ UInt32(bytes[index])) & 0xFF)] ^ (c >> 8)
                index += 1
            }
            return ~c
        }
    }
}
