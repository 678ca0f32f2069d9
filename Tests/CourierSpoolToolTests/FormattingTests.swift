import Foundation
import Testing
@testable import CourierSpoolToolKit

@Suite("Formatting")
struct FormattingTests {
    @Test("sizes in binary units")
    func sizes() {
        #expect(Units.bytes(0) == "0 B")
        #expect(Units.bytes(1023) == "1023 B")
        #expect(Units.bytes(1024) == "1.0 KiB")
        #expect(Units.bytes(60_160) == "58.8 KiB")
        #expect(Units.bytes(5 << 30) == "5.0 GiB")
    }

    @Test("ages in the two largest units")
    func ages() {
        let second: Int64 = 1_000_000_000
        #expect(Units.age(nanoseconds: -5 * second) == "0s")
        #expect(Units.age(nanoseconds: 45 * second + 999_999_999) == "45s")
        #expect(Units.age(nanoseconds: 192 * second) == "3m 12s")
        #expect(Units.age(nanoseconds: (2 * 3600 + 5 * 60 + 9) * second) == "2h 05m")
        #expect(Units.age(nanoseconds: (3 * 86_400 + 4 * 3600) * second) == "3d 04h")
    }

    @Test("ISO 8601 in UTC with milliseconds, before and after 1970")
    func iso8601() {
        #expect(Units.iso8601(nanoseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Units.iso8601(nanoseconds: fixedNow + 789_000_000) == "2025-03-01T12:00:00.789Z")
        #expect(Units.iso8601(nanoseconds: 951_782_400 * 1_000_000_000) == "2000-02-29T00:00:00.000Z")
        #expect(Units.iso8601(nanoseconds: -1_000_000) == "1969-12-31T23:59:59.999Z")
        // Agrees with Foundation over a spread of times.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for seconds in stride(from: Int64(-2_000_000_000), to: 4_000_000_000, by: 97_654_321) {
            let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            #expect(Units.iso8601(nanoseconds: seconds * 1_000_000_000) == expected)
        }
        #expect(Units.grouped(1_234_567) == "1,234,567")
        #expect(Units.grouped(12) == "12")
    }

    @Test("previews: text as is, control characters and non-UTF-8 bytes escaped, long payloads cut")
    func previews() {
        #expect(Preview.of(Array("hello".utf8)) == "hello")
        #expect(Preview.of(Array("a\nb\tc\\d\u{1B}".utf8)) == "a\\nb\\tc\\\\d\\u{1B}")
        #expect(Preview.of(Array("grüße".utf8)) == "grüße")
        #expect(Preview.of([0xFF, 0x00, 0x41, 0x0A, 0x5C]) == "\\xFF\\x00A\\x0A\\\\")
        #expect(Preview.of(Array(String(repeating: "x", count: 50).utf8), limit: 10) == "xxxxxxxxxx…")
        #expect(Preview.of(Array(String(repeating: "x", count: 10).utf8), limit: 10) == "xxxxxxxxxx")
    }

    @Test("JSON: escapes, numbers as numbers, keys in order; base64 as Foundation writes it")
    func json() throws {
        let value = JSON.object([
            ("b", .string("q\"\\\n\u{01}é")), ("a", .int(-3)), ("u", .unsigned(.max)), ("d", .double(0.5)),
            ("n", .null), ("t", .bool(true)), ("e", .array([])), ("o", .object([])),
        ])
        let compact = value.rendered(pretty: false)
        #expect(compact == #"{"b":"q\"\\\n\u0001é","a":-3,"u":18446744073709551615,"d":0.5,"n":null,"t":true,"e":[],"o":{}}"#)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(value.rendered().utf8)) as? [String: Any])
        #expect(parsed["b"] as? String == "q\"\\\n\u{01}é")
        #expect(parsed["a"] as? Int == -3)
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(($0 * 37 + 250) % 256) }
            #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString())
        }
    }

    @Test("tables: text left, numbers right, no trailing spaces")
    func table() {
        var table = Table([("NAME", .left), ("COUNT", .right), ("NOTE", .left)])
        table.add(["a", "1", ""])
        table.add(["longer", "1000", "x"])
        #expect(table.rendered() == """
            NAME    COUNT  NOTE
            a           1
            longer   1000  x

            """)
    }

    @Test("the holder of an flock is found in /proc/locks by device and inode; waiters are not holders")
    func procLocks() {
        let text = """
            1: POSIX  ADVISORY  WRITE 77 08:01:999 0 EOF
            2: FLOCK  ADVISORY  WRITE 4242 00:2d:1234567 0 EOF
            2: -> FLOCK  ADVISORY  WRITE 4343 00:2d:1234567 0 EOF
            3: FLOCK  ADVISORY  WRITE 55 00:2e:1234567 0 EOF
            """
        #expect(LockState.flockHolder(in: text, major: 0, minor: 0x2D, inode: 1_234_567) == 4242)
        #expect(LockState.flockHolder(in: text, major: 0, minor: 0x2E, inode: 1_234_567) == 55)
        #expect(LockState.flockHolder(in: text, major: 8, minor: 1, inode: 999) == nil)
        #expect(LockState.flockHolder(in: text, major: 0, minor: 0x2D, inode: 1) == nil)
    }
}
