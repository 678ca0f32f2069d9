import Testing
import CourierChecksum

@Suite("CRC-32C")
struct CRC32CTests {
    @Test("known vectors (RFC 3720 B.4 and the check value)")
    func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test("incremental updates equal one pass, at every split")
    func incremental() {
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let whole = CRC32C.checksum(bytes)
        for split in 0...bytes.count {
            let a = Array(bytes[..<split])
            let b = Array(bytes[split...])
            let first = a.withUnsafeBytes { CRC32C.checksum($0) }
            let combined = b.withUnsafeBytes { CRC32C.update(first, $0) }
            #expect(combined == whole)
        }
    }

    @Test("the CPU's instruction and the portable table agree, at every length and alignment")
    func hardwareMatchesTable() {
        let bytes = (0..<1100).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 1000] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    #expect(CRC32C.update(0x1234_5678, slice) == CRC32C.portableUpdate(0x1234_5678, slice),
                            "start \(start), length \(length)")
                }
            }
        }
    }
}
