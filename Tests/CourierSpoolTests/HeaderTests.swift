import Foundation
import SystemPackage
import Testing
@testable import CourierSpool
import TestSupport

@Suite("Message headers in the spool")
struct HeaderTests {
    private let traced: [(name: String, value: String)] = [("content-type", "application/json"), ("traceparent", "00-4bf9-01"), ("é", "")]

    @Test("the header block round-trips, and the limits are enforced on both sides")
    func blockRoundTripAndLimits() {
        let block = HeaderBlock.encode(traced)
        #expect(block.count == 1 + (3 + 12 + 16) + (3 + 11 + 10) + (3 + 2 + 0))
        let decoded = HeaderBlock.decode(block)
        #expect(decoded?.map(\.name) == traced.map(\.name) && decoded?.map(\.value) == traced.map(\.value))
        #expect(HeaderBlock.encode([]).isEmpty && HeaderBlock.decode([UInt8]())?.isEmpty == true)

        #expect(HeaderBlock.problem(with: traced) == nil)
        #expect(HeaderBlock.problem(with: [("", "x")]) != nil)
        #expect(HeaderBlock.problem(with: [("a", "1"), ("a", "2")]) != nil)
        #expect(HeaderBlock.problem(with: [(String(repeating: "n", count: 256), "")]) != nil)
        #expect(HeaderBlock.problem(with: [(String(repeating: "n", count: 255), "")]) == nil)
        #expect(HeaderBlock.problem(with: [("v", String(repeating: "v", count: 4097))]) != nil)
        #expect(HeaderBlock.problem(with: [("v", String(repeating: "v", count: 4096))]) == nil)
        #expect(HeaderBlock.problem(with: (0..<65).map { ("h\($0)", "") }) != nil)
        #expect(HeaderBlock.problem(with: (0..<64).map { ("h\($0)", "") }) == nil)
        // 64 headers of 4 KiB values: each fits, the block does not.
        #expect(HeaderBlock.problem(with: (0..<5).map { ("h\($0)", String(repeating: "v", count: 4096)) }) != nil)
    }

    @Test("a malformed block is refused with a reason, never trusted", arguments: [
        ([0] as [UInt8], "count 0"),
        ([65], "count above 64"),
        ([1, 0, 0, 0], "empty name"),
        ([1, 1, 0x61, 1], "value length runs past"),
        ([1, 1, 0x61, 2, 0, 0x62], "value runs past"),
        ([1, 1, 0xFF, 0, 0], "name not UTF-8"),
        ([1, 1, 0x61, 1, 0, 0xC3], "value not UTF-8"),
        ([2, 1, 0x61, 0, 0, 1, 0x61, 0, 0], "repeated name"),
        ([1, 1, 0x61, 0, 0, 7], "trailing byte"),
        ([1, 1, 0x61, 0x01, 0x10] + [UInt8](repeating: 0x61, count: 4097), "value above 4096"),
    ])
    func malformedBlocks(block: [UInt8], what: String) {
        let problem = block.withUnsafeBytes { HeaderBlock.validate($0) }
        #expect(problem != nil, "\(what)")
        #expect(HeaderBlock.decode(block) == nil)
    }

    @Test("random bytes never crash the validator, and what it accepts decodes")
    func randomBlocks() {
        var random = SeededGenerator(seed: 23)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...40, using: &random)
            var block = (0..<count).map { _ in UInt8.random(in: 0...6, using: &random) }
            if !block.isEmpty, Bool.random(using: &random) { block[0] = UInt8.random(in: 1...3, using: &random) }
            let valid = block.withUnsafeBytes { HeaderBlock.validate($0) } == nil
            #expect(valid == (HeaderBlock.decode(block).map { !$0.isEmpty } ?? false))
        }
    }

    @Test("headers are stored with the record, read back, dead-lettered and requeued; records without them read as before")
    func logRoundTrip() async throws {
        let temp = TemporaryDirectory("headers")
        let block = HeaderBlock.encode(traced)
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            _ = try await log.append(SpoolEntry(payload: payload(1)))
            _ = try await log.append(SpoolEntry(payload: payload(2), flags: 0x0004, headers: block))
            _ = try await log.append(SpoolEntry(payload: [], headers: block))
            let records = try allPending(log)
            #expect(records.map(\.headers) == [[], block, block])
            #expect(records.map(\.payload) == [payload(1), payload(2), []])
            #expect(records[1].flags == 0x0004, "the headers flag is the spool's own, not the caller's")
            try await log.deadLetters.add(records[1], streamID: log.streamID, reason: .rejected("no"))
            directory.close()
        }
        let directory = try DataDirectory(path: temp.path, configuration: configuration())
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(try allPending(log).map(\.headers) == [[], block, block])
        let letters = try await log.deadLetters.list()
        #expect(letters.count == 1 && letters[0].record.headers == block && letters[0].record.payload == payload(2))
        let requeued = try await log.deadLetters.requeue(letters[0].id)
        let again = try allPending(log).first { $0.sequenceNumber == requeued }
        #expect(again?.headers == block && again?.payload == payload(2))
        let inspected = try SpoolInspector(path: temp.path).records(peer: "peer")
        #expect(inspected.map(\.record.headers) == [[], block, block, block])
    }

    @Test("a record whose header block does not read is skipped as damage, with a valid checksum or not")
    func malformedStoredBlock() async throws {
        let temp = TemporaryDirectory("bad-block")
        let block = HeaderBlock.encode([("name", "value")])
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...3 { _ = try await log.append(SpoolEntry(payload: payload(i), headers: i == 2 ? block : [])) }
            directory.close()
        }
        // Make the block lie (its name length runs past it) and give the record a checksum
        // that matches: only the block's own checks can catch it.
        let segment = try #require(try segmentFiles(peerDirectory(temp.path, "peer")).first)
        var bytes = try readFile(segment)
        let at = try #require(bytes.indices.first { bytes[$0...].starts(with: block) })
        let recordStart = at - 2 - RecordFormat.headerSize
        bytes[at + 1] = 200
        let crc = bytes.withUnsafeBytes { RecordFormat.checksum($0, at: recordStart, length: Int($0.u32(at: recordStart))) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[recordStart + 4 + i] = $0[i] } }
        try writeFile(segment, bytes)

        let directory = try DataDirectory(path: temp.path, configuration: configuration())
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(try allPending(log).map(\.sequenceNumber) == [1, 3])
        let inspected = try SpoolInspector(path: temp.path).records(peer: "peer")
        #expect(inspected.count == 3 && inspected[1].record.headers.isEmpty, "shown whole, as its payload")
    }
}
