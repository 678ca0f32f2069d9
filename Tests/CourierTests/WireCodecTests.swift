import CourierChecksum
import Testing
import TestSupport
@testable import Courier

@Suite("Wire protocol v1: encoding and decoding")
struct WireCodecTests {
    let decoder = WireDecoder(maxPayloadSize: 1 << 20)

    static let samples: [WireFrame] = [
        .hello(.init(stream: 0xDEAD_BEEF, firstUnacknowledged: 5, nextSequence: 9)),
        .welcome(.init(stream: 42, processedUpTo: 3, receivedUpTo: 7)),
        .data(.init(stream: 42, records: [
            .init(sequence: 1, attempt: 1, isTombstone: false, expiry: 0, payload: ArraySlice("hello".utf8)),
            .init(sequence: 2, attempt: 3, isTombstone: true, expiry: 1_700_000_000_000_000_000, payload: []),
            .init(sequence: 9, attempt: 1, isTombstone: false, expiry: 0, payload: []),
        ])),
        .ack(.init(stream: 42, processedUpTo: 10, receivedUpTo: 20, processedRanges: [12...13, 15...15, 17...19])),
        .ack(.init(stream: 1, processedUpTo: 0, receivedUpTo: 0, processedRanges: [])),
        .versions(.init(supported: [1])),
        .versions(.init(supported: [1, 2, 7])),
        .outcomes(.init(stream: 42, entries: [
            .init(sequence: 4, code: .rejected, reason: "no such account — ünïcode"),
            .init(sequence: 6, code: .expired, reason: ""),
        ])),
    ]

    @Test("every kind of frame survives a round trip", arguments: samples)
    func roundTrip(frame: WireFrame) throws {
        let bytes = WireEncoder.encode(frame)
        #expect(try decoder.decode(bytes) == frame)
    }

    @Test("the header is magic CR, version 1, the kind; the trailer is the CRC-32C of the rest")
    func layout() {
        let bytes = WireEncoder.encode(.hello(.init(stream: 1, firstUnacknowledged: 2, nextSequence: 3)))
        #expect(Array(bytes.prefix(4)) == [0x43, 0x52, 1, 1])
        #expect(bytes.count == 4 + 24 + 4)
        #expect(Array(bytes[4..<12]) == [1, 0, 0, 0, 0, 0, 0, 0])
        let crc = CRC32C.checksum(bytes.dropLast(4))
        #expect(Array(bytes.suffix(4)) == [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
    }

    @Test("every truncation of every sample is refused", arguments: samples)
    func truncations(frame: WireFrame) {
        let bytes = WireEncoder.encode(frame)
        for length in 0..<bytes.count {
            #expect(throws: WireError.self, "length \(length)") { try decoder.decode(Array(bytes.prefix(length))) }
        }
    }

    @Test("every single-bit flip of every sample is refused", arguments: samples)
    func bitFlips(frame: WireFrame) {
        let bytes = WireEncoder.encode(frame)
        for bit in 0..<(bytes.count * 8) {
            var damaged = bytes
            damaged[bit / 8] ^= 1 << (bit % 8)
            #expect(throws: WireError.self, "bit \(bit)") { try decoder.decode(damaged) }
        }
    }

    @Test("appended bytes are refused even with a valid checksum")
    func extension_() {
        var body = Array(WireEncoder.encode(Self.samples[0]).dropLast(4))
        body.append(0)
        #expect(throws: WireError.trailingBytes(1)) { try decoder.decode(seal(body)) }
    }

    @Test("well-sealed frames with forbidden contents are refused", arguments: [
        (frameBody(version: 3, kind: 1, fields: [u64(1), u64(1), u64(1)]), WireError.unsupportedVersion(3)),
        (frameBody(version: 0, kind: 1, fields: [u64(1), u64(1), u64(1)]), WireError.unsupportedVersion(0)),
        (frameBody(kind: 9, fields: [u64(1)]), .unknownKind(9)),
        (frameBody(kind: 1, fields: [u64(0), u64(1), u64(1)]), .invalidField("stream id 0")),
        (frameBody(kind: 1, fields: [u64(1), u64(0), u64(1)]), nil),
        (frameBody(kind: 1, fields: [u64(1), u64(5), u64(4)]), nil),
        (frameBody(kind: 2, fields: [u64(1), u64(5), u64(4)]), nil),
        // data: zero records, a lying count, sequence order, attempt 0, unknown flag, tombstone payload
        (frameBody(kind: 3, fields: [u64(1), u16(0)]), nil),
        (frameBody(kind: 3, fields: [u64(1), u16(4096)]), nil),
        (frameBody(kind: 3, fields: [u64(1), u16(2), record(seq: 5), record(seq: 5)]), nil),
        (frameBody(kind: 3, fields: [u64(1), u16(1), record(seq: 0)]), nil),
        (frameBody(kind: 3, fields: [u64(1), u16(1), record(seq: 1, attempt: 0)]), nil),
        (frameBody(kind: 3, fields: [u64(1), u16(1), record(seq: 1, flags: 2)]), nil),
        (frameBody(kind: 3, fields: [u64(1), u16(1), record(seq: 1, flags: 1, payload: [1])]), nil),
        (frameBody(kind: 3, fields: [u64(1), u16(1), record(seq: 1, statedLength: 1 << 30)]), .payloadTooLarge(1 << 30, limit: 1 << 20)),
        (frameBody(kind: 3, fields: [u64(1), u16(1), record(seq: 1, statedLength: 100, payload: [1, 2])]), nil),
        // acks: received below processed, ranges touching the mark, overlapping, reversed, too many
        (frameBody(kind: 4, fields: [u64(1), u64(5), u64(4), u16(0)]), nil),
        (frameBody(kind: 4, fields: [u64(1), u64(5), u64(9), u16(1), u64(6), u64(7)]), nil),
        (frameBody(kind: 4, fields: [u64(1), u64(5), u64(9), u16(2), u64(7), u64(8), u64(9), u64(9)]), nil),
        (frameBody(kind: 4, fields: [u64(1), u64(5), u64(9), u16(1), u64(8), u64(7)]), nil),
        (frameBody(kind: 4, fields: [u64(1), u64(5), u64(9), u16(257)]), .tooManyItems("ranges", 257)),
        (frameBody(kind: 4, fields: [u64(1), u64(.max), u64(.max), u16(0)]), nil),
        // versions: none, not ascending, zero, a lying count
        (frameBody(kind: 6, fields: [[0]]), nil),
        (frameBody(kind: 6, fields: [[2, 2, 1]]), nil),
        (frameBody(kind: 6, fields: [[1, 0]]), nil),
        (frameBody(kind: 6, fields: [[3, 1]]), nil),
        // outcomes: none, unknown code, a reason that is not UTF-8
        (frameBody(kind: 5, fields: [u64(1), u16(0)]), nil),
        (frameBody(kind: 5, fields: [u64(1), u16(1), u64(3), [7], u16(0)]), nil),
        (frameBody(kind: 5, fields: [u64(1), u16(1), u64(3), [1], u16(2), [0xC3, 0x28]]), nil),
    ] as [([UInt8], WireError?)])
    func forbiddenContents(body: [UInt8], expected: WireError?) {
        let error = #expect(throws: WireError.self) { try decoder.decode(seal(body)) }
        if let expected { #expect(error == expected) }
    }

    /// Numbers just above the protocol's limit, at 2^63 and at 2^64 − 1, in every field that
    /// carries a sequence number or mark.
    static let beyondLimit: [UInt64] = [Wire.maxSequence + 1, 1 << 63, .max]

    @Test("every sequence number and mark above 2^62 is refused, in every frame kind", arguments: beyondLimit)
    func marksBeyondTheLimit(value: UInt64) {
        let bodies: [[UInt8]] = [
            frameBody(kind: 1, fields: [u64(1), u64(1), u64(value)]),                 // hello next
            frameBody(kind: 1, fields: [u64(1), u64(value), u64(value)]),             // hello first
            frameBody(kind: 2, fields: [u64(1), u64(0), u64(value)]),                 // welcome received
            frameBody(kind: 2, fields: [u64(1), u64(value), u64(value)]),             // welcome processed
            frameBody(kind: 3, fields: [u64(1), u16(1), record(seq: value)]),         // data sequence
            frameBody(kind: 3, fields: [u64(1), u16(2), record(seq: 1), record(seq: value)]),
            frameBody(kind: 4, fields: [u64(1), u64(0), u64(value), u16(0)]),         // ack received
            frameBody(kind: 4, fields: [u64(1), u64(value), u64(value), u16(0)]),     // ack processed
            frameBody(kind: 4, fields: [u64(1), u64(1), u64(1), u16(1), u64(3), u64(value)]), // ack range
            frameBody(kind: 4, fields: [u64(1), u64(1), u64(1), u16(1), u64(value), u64(value)]),
            frameBody(kind: 5, fields: [u64(1), u16(1), u64(value), [1], u16(0)]),    // outcome sequence
        ]
        for (index, body) in bodies.enumerated() {
            #expect(throws: WireError.self, "body \(index) with \(value)") { try decoder.decode(seal(body)) }
        }
    }

    @Test("sequence numbers and marks at the edges of the allowed range decode", arguments: [0, 1, Wire.maxSequence - 1, Wire.maxSequence] as [UInt64])
    func marksAtTheLimit(value: UInt64) throws {
        let sequence = max(value, 1)
        let frames: [WireFrame] = [
            .hello(.init(stream: 1, firstUnacknowledged: sequence, nextSequence: sequence)),
            .welcome(.init(stream: 1, processedUpTo: value, receivedUpTo: value)),
            .data(.init(stream: 1, records: [.init(sequence: sequence, attempt: .max, isTombstone: false, expiry: .max, payload: [])])),
            .ack(.init(stream: 1, processedUpTo: value, receivedUpTo: value, processedRanges: [])),
            .outcomes(.init(stream: .max, entries: [.init(sequence: sequence, code: .rejected, reason: "")])),
        ]
        for frame in frames { #expect(try decoder.decode(WireEncoder.encode(frame)) == frame) }
        if value + 2 <= Wire.maxSequence {
            let ack = WireFrame.ack(.init(stream: 1, processedUpTo: value, receivedUpTo: value, processedRanges: [(value + 2)...Wire.maxSequence]))
            #expect(try decoder.decode(WireEncoder.encode(ack)) == ack)
        }
    }

    @Test("an over-long reason is cut to 1,024 bytes where a character begins, and decodes", arguments: [
        String(repeating: "€", count: 400),        // 3 bytes each: a cut at 1,024 falls inside one
        String(repeating: "😀", count: 300),       // 4 bytes each
        String(repeating: "a", count: 1023) + "é", // the 1,024th byte begins a 2-byte character
        String(repeating: "x", count: 2000),
    ])
    func longReasons(reason: String) throws {
        let frame = WireFrame.outcomes(.init(stream: 1, entries: [.init(sequence: 1, code: .rejected, reason: reason)]))
        guard case .outcomes(let decoded) = try decoder.decode(WireEncoder.encode(frame)) else {
            Issue.record("not an outcomes frame"); return
        }
        let sent = decoded.entries[0].reason
        #expect(sent.utf8.count <= Wire.maxReasonBytes)
        #expect(sent.utf8.count > Wire.maxReasonBytes - 4)
        #expect(reason.hasPrefix(sent))
    }

    @Test("random byte strings never decode and never trap")
    func randomFrames() {
        var generator = SeededGenerator(seed: 0xC0FFEE)
        for _ in 0..<20_000 {
            let length = Int(generator.next() % 200)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if length > 4, generator.next() % 2 == 0 { bytes[0] = 0x43; bytes[1] = 0x52; bytes[2] = 1 }
            #expect(throws: WireError.self) { try decoder.decode(bytes) }
            // Sealed random bodies get past the checksum and exercise the field checks.
            if length > 4 { _ = try? decoder.decode(seal(bytes)) }
        }
    }

    @Test("a data frame's payloads are slices of the received bytes")
    func payloadSlices() throws {
        var encoder = WireEncoder.data(stream: 3)
        encoder.appendRecord(sequence: 1, attempt: 1, isTombstone: false, expiry: 0, payload: [1, 2, 3])
        encoder.appendRecord(sequence: 2, attempt: 2, isTombstone: false, expiry: 0, payload: [4])
        #expect(encoder.recordCount == 2)
        guard case .data(let batch) = try decoder.decode(encoder.finish()) else {
            Issue.record("not a data frame"); return
        }
        #expect(batch.records.map { Array($0.payload) } == [[1, 2, 3], [4]])
        #expect(batch.records.map(\.attempt) == [1, 2])
    }
}

// MARK: Frame-building helpers for hostile input

func u16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
func u64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

func frameBody(version: UInt8 = 1, kind: UInt8, fields: [[UInt8]]) -> [UInt8] {
    [0x43, 0x52, version, kind] + fields.flatMap { $0 }
}

func record(seq: UInt64, attempt: UInt32 = 1, flags: UInt8 = 0, statedLength: UInt32? = nil, payload: [UInt8] = []) -> [UInt8] {
    u64(seq) + u32(attempt) + [flags] + u64(0) + u32(statedLength ?? UInt32(payload.count)) + payload
}

/// Appends a correct CRC-32C, so a test reaches the checks behind the checksum.
func seal(_ body: [UInt8]) -> [UInt8] { body + u32(CRC32C.checksum(body)) }
