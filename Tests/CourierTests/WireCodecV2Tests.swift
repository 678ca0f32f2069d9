import CourierChecksum
import CourierSpool
import Testing
import TestSupport
@testable import Courier

@Suite("Wire protocol v2: the named HELLO, the announcing WELCOME, headers in DATA")
struct WireCodecV2Tests {
    let decoder = WireDecoder(maxPayloadSize: 1 << 20)
    static let block = HeaderBlock.encode([("content-type", "text/plain"), ("traceparent", "00-abc-01")])

    static let samples: [WireFrame] = [
        .hello(.init(stream: 0xDEAD_BEEF, firstUnacknowledged: 5, nextSequence: 9, nonce: 0x0123_4567_89AB_CDEF)),
        .welcome(.init(stream: 42, processedUpTo: 3, receivedUpTo: 7, answer: .init(nonce: 77, window: 8192, maxMessageSize: 1 << 20))),
        .welcome(.init(stream: 42, processedUpTo: 3, receivedUpTo: 7,
                       answer: .init(nonce: 78, window: 16, maxMessageSize: 100, receivedRanges: [9...9, 11...14]))),
        .data(.init(stream: 42, records: [
            .init(sequence: 1, attempt: 1, isTombstone: false, expiry: 0, payload: ArraySlice("hello".utf8), headers: block[...]),
            .init(sequence: 2, attempt: 3, isTombstone: true, expiry: 1_700_000_000_000_000_000, payload: []),
            .init(sequence: 9, attempt: 1, isTombstone: false, expiry: 0, payload: [], headers: block[...]),
            .init(sequence: 10, attempt: 1, isTombstone: false, expiry: 0, payload: [1, 2]),
        ])),
    ]

    @Test("every version-2 frame survives a round trip", arguments: samples)
    func roundTrip(frame: WireFrame) throws {
        #expect(try decoder.decode(WireEncoder.encode(frame, version: 2)) == frame)
    }

    @Test("byte layout: HELLO adds the nonce, WELCOME the nonce, window and maximum message size, a record the header length")
    func layout() {
        let hello = WireEncoder.encode(.hello(.init(stream: 1, firstUnacknowledged: 2, nextSequence: 3, nonce: 4)), version: 2)
        #expect(hello == seal(frameBody(version: 2, kind: 1, fields: [u64(1), u64(2), u64(3), u64(4)])))
        let welcome = WireEncoder.encode(.welcome(.init(stream: 1, processedUpTo: 2, receivedUpTo: 3,
                                                        answer: .init(nonce: 4, window: 5, maxMessageSize: 6))), version: 2)
        #expect(welcome == seal(frameBody(version: 2, kind: 2, fields: [u64(1), u64(2), u64(3), u64(4), u32(5), u32(6), u16(0)])))
        let ranged = WireEncoder.encode(.welcome(.init(stream: 1, processedUpTo: 2, receivedUpTo: 3,
                                                       answer: .init(nonce: 4, window: 5, maxMessageSize: 6, receivedRanges: [5...6]))), version: 2)
        #expect(ranged == seal(frameBody(version: 2, kind: 2, fields: [u64(1), u64(2), u64(3), u64(4), u32(5), u32(6), u16(1), u64(5), u64(6)])))
        let block: [UInt8] = [1, 1, 0x6B, 1, 0, 0x76]  // one header, k = v
        let data = WireEncoder.encode(.data(.init(stream: 1, records: [
            .init(sequence: 7, attempt: 2, isTombstone: false, expiry: 9, payload: [0xAA], headers: block[...]),
        ])), version: 2)
        #expect(data == seal(frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(7), u32(2), [0], u64(9), u16(6), u32(1), block, [0xAA]])))
        // ACK and OUTCOMES keep their version-1 layout under version byte 2.
        let ack = WireEncoder.encode(.ack(.init(stream: 1, processedUpTo: 2, receivedUpTo: 3, processedRanges: [])), version: 2)
        #expect(ack == seal(frameBody(version: 2, kind: 4, fields: [u64(1), u64(2), u64(3), u16(0)])))
        // VERSIONS is always written in version 1, whatever it lists.
        #expect(WireEncoder.encode(.versions(.init(supported: [1, 2])), version: 2) == seal(frameBody(version: 1, kind: 6, fields: [[2, 1, 2]])))
    }

    @Test("a version-1 encoding of a version-2 frame drops what version 1 cannot say, and decodes as version 1")
    func versionOneLeavesOut() throws {
        let hello = WireFrame.hello(.init(stream: 1, firstUnacknowledged: 1, nextSequence: 1, nonce: 9))
        #expect(try decoder.decode(WireEncoder.encode(hello, version: 1)) == .hello(.init(stream: 1, firstUnacknowledged: 1, nextSequence: 1)))
    }

    @Test("every truncation and every single-bit flip of every version-2 sample is refused", arguments: samples)
    func damage(frame: WireFrame) {
        let bytes = WireEncoder.encode(frame, version: 2)
        for length in 0..<bytes.count {
            #expect(throws: WireError.self, "length \(length)") { try decoder.decode(Array(bytes.prefix(length))) }
        }
        for bit in 0..<(bytes.count * 8) {
            var damaged = bytes
            damaged[bit / 8] ^= 1 << (bit % 8)
            #expect(throws: WireError.self, "bit \(bit)") { try decoder.decode(damaged) }
        }
    }

    @Test("well-sealed version-2 frames with forbidden contents are refused", arguments: [
        // HELLO and WELCOME of version-1 length under version byte 2 (the new fields missing)
        frameBody(version: 2, kind: 1, fields: [u64(1), u64(1), u64(1)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0)]),
        // WELCOME: window 0, window above 2^20, maximum message size 0, a byte too many, no
        // range count
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0), u64(1), u32(0), u32(1), u16(0)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0), u64(1), u32((1 << 20) + 1), u32(1), u16(0)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0), u64(1), u32(8), u32(0), u16(0)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0), u64(1), u32(8), u32(8), u16(0), [0]]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0), u64(1), u32(8), u32(8)]),
        // WELCOME ranges: touching received-up-to, overlapping, touching each other, reversed,
        // above 2^62, more than 256, a count past the frame
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(3), u64(1), u32(8), u32(8), u16(1), u64(4), u64(5)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(3), u64(1), u32(8), u32(8), u16(2), u64(5), u64(7), u64(7), u64(9)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(3), u64(1), u32(8), u32(8), u16(2), u64(5), u64(7), u64(8), u64(9)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(3), u64(1), u32(8), u32(8), u16(1), u64(9), u64(5)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(3), u64(1), u32(8), u32(8), u16(1), u64(5), u64((1 << 62) + 1)]),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0), u64(1), u32(8), u32(8), u16(257)]
                  + (0..<257).map { u64(UInt64($0) * 3 + 2) + u64(UInt64($0) * 3 + 2) }),
        frameBody(version: 2, kind: 2, fields: [u64(1), u64(0), u64(0), u64(1), u32(8), u32(8), u16(2), u64(5), u64(6)]),
        // DATA: a header length past the frame, above 16 KiB, a malformed block, headers on a
        // tombstone, a version-1 record under version byte 2
        frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(1), u32(1), [0], u64(0), u16(9), u32(0), [1, 1, 0x6B, 1, 0, 0x76]]),
        frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(1), u32(1), [0], u64(0), u16(16385), u32(0)] + [[UInt8](repeating: 0, count: 16385)]),
        frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(1), u32(1), [0], u64(0), u16(3), u32(0), [1, 0, 0]]),
        frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(1), u32(1), [0], u64(0), u16(4), u32(0), [1, 1, 0xFF, 0, 0]]),
        frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(1), u32(1), [0], u64(0), u16(9), u32(0), [2, 1, 0x6B, 0, 0, 1, 0x6B, 0, 0]]),
        frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(1), u32(1), [1], u64(0), u16(6), u32(0), [1, 1, 0x6B, 1, 0, 0x76]]),
        frameBody(version: 2, kind: 3, fields: [u64(1), u16(1), u64(1), u32(1), [0], u64(0), u32(1), [7]]),
        // VERSIONS under version byte 2
        frameBody(version: 2, kind: 6, fields: [[2, 1, 2]]),
    ])
    func forbidden(body: [UInt8]) {
        #expect(throws: WireError.self) { try decoder.decode(seal(body)) }
    }

    @Test("a node capped at version 1 refuses version-2 frames as an unsupported version, and reads version 1")
    func versionOneNode() throws {
        let capped = WireDecoder(maxPayloadSize: 1 << 20, latestVersion: 1)
        let frame = WireEncoder.encode(.hello(.init(stream: 1, firstUnacknowledged: 1, nextSequence: 1, nonce: 1)), version: 2)
        #expect(throws: WireError.unsupportedVersion(2)) { try capped.decode(frame) }
        #expect(try capped.decode(WireEncoder.encode(.hello(.init(stream: 1, firstUnacknowledged: 1, nextSequence: 1)), version: 1))
                == .hello(.init(stream: 1, firstUnacknowledged: 1, nextSequence: 1)))
    }

    @Test("random bytes after a version-2 header never crash the decoder")
    func fuzz() {
        var random = SeededGenerator(seed: 0x2222)
        for _ in 0..<20_000 {
            let kind = UInt8.random(in: 1...6, using: &random)
            let fields = (0..<Int.random(in: 0...60, using: &random)).map { _ in [UInt8.random(in: 0...3, using: &random)] }
            _ = try? decoder.decode(seal(frameBody(version: 2, kind: kind, fields: fields)))
        }
    }
}
