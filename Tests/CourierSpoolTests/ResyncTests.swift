import Foundation
import SystemPackage
import Testing
import TestSupport
@testable import CourierSpool

/// Recovery resynchronises after damage in the middle of a segment: only the damaged
/// records are quarantined, every later valid record stays readable in order
/// (docs/SPOOL-FORMAT.md, "Recovery on open", step 2).
@Suite("Resynchronisation")
struct ResyncTests {
    /// A spool with one segment holding `payloads` for peer "peer", closed again.
    struct Spool {
        let temp: TemporaryDirectory
        let payloads: [[UInt8]]
        /// Start and end offset of each record (record `i` holds sequence number `i + 1`).
        let starts: [Int]
        let ends: [Int]
        var data: FilePath { temp.sub("data") }
        var segment: FilePath { get throws { try #require(try segmentFiles(peerDirectory(data, "peer")).first) } }

        init(_ label: String, payloads: [[UInt8]]) throws {
            temp = TemporaryDirectory(label)
            self.payloads = payloads
            let directory = try DataDirectory(path: temp.sub("data"), configuration: configuration(.none))
            defer { directory.close() }
            let log = try directory.outboundLog(for: "peer")
            var starts: [Int] = []
            var ends: [Int] = []
            var end = 48
            for body in payloads {
                _ = try log.appendAndWait(SpoolEntry(payload: body))
                starts.append(end)
                end += 40 + body.count
                ends.append(end)
            }
            self.starts = starts
            self.ends = ends
        }

        init(_ label: String, count: Int, size: (Int) -> Int = { _ in 60 }) throws {
            try self.init(label, payloads: (1...count).map { payload($0, size: size($0)) })
        }

        /// Changes the segment's bytes in place.
        func damage(_ change: (inout [UInt8]) -> Void) throws {
            var bytes = try readFile(try segment)
            change(&bytes)
            try writeFile(try segment, bytes)
        }

        /// Sets the length field of record `sequence`.
        func setLength(of sequence: Int, to length: UInt32) throws {
            let at = starts[sequence - 1]
            try damage { bytes in
                withUnsafeBytes(of: length.littleEndian) { for i in 0..<4 { bytes[at + i] = $0[i] } }
            }
        }

        /// Flips one bit in the body of record `sequence`.
        func flipBody(of sequence: Int, at position: Int = 3) throws {
            let at = starts[sequence - 1] + 40 + position
            try damage { $0[at] ^= 0x08 }
        }

        func open(_ events: EventCollector) throws -> (DataDirectory, OutboundLog) {
            let directory = try DataDirectory(path: data, configuration: configuration(.none, events: events))
            return (directory, try directory.outboundLog(for: "peer"))
        }

        /// Payloads of every record except the given sequence numbers.
        func payloads(without missing: Set<Int>) -> [[UInt8]] {
            payloads.indices.filter { !missing.contains($0 + 1) }.map { payloads[$0] }
        }

        func sequences(without missing: Set<Int>) -> [UInt64] {
            (1...payloads.count).filter { !missing.contains($0) }.map(UInt64.init)
        }
    }

    @Test("one flipped bit in the middle record: exactly that record is missing; everything else reads in order")
    func oneFlip() async throws {
        let spool = try Spool("one", count: 101)
        try spool.flipBody(of: 51)
        let damaged = try readFile(try spool.segment)
        // verify (the inspector) sees the damaged range before the node opens it.
        let before = try SpoolInspector(path: spool.data).verify()
        #expect(before.problems.count == 1)
        #expect(before.problems.first?.offset == Int64(spool.starts[50]))
        #expect(before.problems.first?.length == Int64(spool.ends[50] - spool.starts[50]))
        #expect(before.problems.first?.reason.contains("sequence number 51") == true)

        let events = EventCollector()
        do {
            let (directory, log) = try spool.open(events)
            defer { directory.close() }
            let records = try allPending(log)
            #expect(records.map(\.sequenceNumber) == spool.sequences(without: [51]))
            #expect(records.map(\.payload) == spool.payloads(without: [51]))
            #expect(events.tornTails == 0)
            let report = try #require(events.corruptions.first)
            #expect(events.corruptions.count == 1)
            #expect(report.offset == Int64(spool.starts[50]))
            #expect(report.length == Int64(spool.ends[50] - spool.starts[50]))
            #expect(report.path == (try spool.segment))
            let quarantined = try #require(report.quarantinedTo)
            #expect(quarantined.lastComponent?.string == "\(try spool.segment.lastComponent!.string).at-\(spool.starts[50]).quarantined")
            #expect(try readFile(quarantined) == Array(damaged[spool.starts[50]..<spool.ends[50]]))
            // The segment itself is not changed: the index skips the range.
            #expect(try readFile(try spool.segment) == damaged)

            // Counters: 100 records, their bytes; the hole is a missing number.
            let status = log.status
            #expect(status.pendingCount == 100)
            // The file: the header, the records, the end marker.
            #expect(status.pendingBytes == Int64(damaged.count - 48 - 40 - (spool.ends[50] - spool.starts[50])))
            #expect(status.missingRanges == [51...51])
            #expect(status.segmentCount == 1)
            #expect(status.nextSequenceNumber == 102)
            // Reads step over the hole, in order, from anywhere.
            #expect(try log.readPending(from: 50, limit: 3).map(\.sequenceNumber) == [50, 52, 53])
            #expect(try log.readPending(from: 51, limit: 2).map(\.sequenceNumber) == [52, 53])
            // Acknowledging across the hole counts only what is held.
            #expect(try log.acknowledge(upTo: 51) == 50)
            #expect(log.status.pendingCount == 50)
            #expect(log.status.missingRanges.isEmpty)
            #expect(try log.acknowledge(upTo: 60) == 9)
            #expect(log.status.pendingCount == 41)
            // Appends go on in the same segment, after the hole.
            #expect(try log.appendAndWait(SpoolEntry(payload: payload(102, size: 60))) == 102)
            #expect(log.status.segmentCount == 1)
            try await log.flush()
        }
        // The next open skips the range it already quarantined, without reporting it again.
        let again = EventCollector()
        let (directory, log) = try spool.open(again)
        defer { directory.close() }
        #expect(again.all.isEmpty)
        #expect(try allPending(log).map(\.sequenceNumber) == Array(61...102))
        #expect(log.status.pendingCount == 42)
        let after = try SpoolInspector(path: spool.data).verify()
        #expect(after.isClean, "\(after.problems)")
        #expect(after.quarantinedFiles.count == 1)
    }

    @Test("two damaged records in one segment: two ranges, two quarantine files, the rest kept")
    func twoRanges() throws {
        let spool = try Spool("two", count: 100, size: { 20 + $0 % 37 })
        try spool.flipBody(of: 20, at: 1)
        try spool.flipBody(of: 70, at: 9)
        let damaged = try readFile(try spool.segment)
        let report = try SpoolInspector(path: spool.data).verify()
        #expect(report.problems.map(\.offset) == [Int64(spool.starts[19]), Int64(spool.starts[69])])
        #expect(report.problems.map(\.length) == [Int64(spool.ends[19] - spool.starts[19]), Int64(spool.ends[69] - spool.starts[69])])
        #expect(report.recordsChecked == 98)

        let events = EventCollector()
        let (directory, log) = try spool.open(events)
        defer { directory.close() }
        #expect(try allPending(log).map(\.payload) == spool.payloads(without: [20, 70]))
        #expect(log.status.missingRanges == [20...20, 70...70])
        #expect(log.status.pendingCount == 98)
        #expect(events.corruptions.count == 2)
        for (report, sequence) in zip(events.corruptions, [20, 70]) {
            let range = spool.starts[sequence - 1]..<spool.ends[sequence - 1]
            #expect(report.offset == Int64(range.lowerBound))
            #expect(try report.quarantinedTo.map(readFile) == Array(damaged[range]))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: peerDirectory(spool.data, "peer").appending("quarantine").string).count == 2)
        // Several damaged records in a row make one range.
        let row = try Spool("row", count: 30)
        for sequence in 10...12 { try row.flipBody(of: sequence) }
        let rowEvents = EventCollector()
        let (rowDirectory, rowLog) = try row.open(rowEvents)
        defer { rowDirectory.close() }
        #expect(try allPending(rowLog).map(\.payload) == row.payloads(without: [10, 11, 12]))
        #expect(rowEvents.corruptions.map(\.offset) == [Int64(row.starts[9])])
        #expect(rowEvents.corruptions.first?.length == Int64(row.ends[11] - row.starts[9]))
        #expect(rowLog.status.missingRanges == [10...12])
    }

    /// How a test damages a record's length field.
    enum LengthDamage: String, CaseIterable, Sendable {
        case impossible, tooShort, aFewBytesLong, insideTheNextRecord, pastTheEndOfTheFile

        /// The damaged length for a record of `actual` bytes with `left` bytes from its start
        /// to the end of the file.
        func length(actual: Int, left: Int) -> UInt32 {
            switch self {
            case .impossible: 0xDEAD_BEEF
            case .tooShort: 12
            case .aFewBytesLong: UInt32(actual + 17)
            case .insideTheNextRecord: UInt32(actual + 61)
            case .pastTheEndOfTheFile: UInt32(left + 1000)
            }
        }
    }

    @Test("a damaged length field (impossible, plausible but wrong, or past the end of the file) costs only its record",
          arguments: LengthDamage.allCases)
    func damagedLength(_ damage: LengthDamage) throws {
        let spool = try Spool("length", count: 41)
        let size = try readFile(try spool.segment).count
        try spool.setLength(of: 21, to: damage.length(actual: spool.ends[20] - spool.starts[20], left: size - spool.starts[20]))
        let events = EventCollector()
        let (directory, log) = try spool.open(events)
        defer { directory.close() }
        #expect(try allPending(log).map(\.payload) == spool.payloads(without: [21]))
        #expect(events.tornTails == 0)
        #expect(events.corruptions.map(\.offset) == [Int64(spool.starts[20])])
        #expect(events.corruptions.first?.length == Int64(spool.ends[20] - spool.starts[20]))
        #expect(log.nextSequenceNumber == 42)
    }

    @Test("damage in the last record: a torn write is truncated, a damaged whole record quarantined, as before")
    func lastRecord() throws {
        // Torn: the last record cut short.
        let torn = try Spool("torn", count: 20)
        try writeFile(try torn.segment, Array(try readFile(try torn.segment).prefix(torn.starts[19] + 25)))
        let tornEvents = EventCollector()
        do {
            let (directory, log) = try torn.open(tornEvents)
            defer { directory.close() }
            #expect(tornEvents.tornTails == 1)
            #expect(tornEvents.corruptions.isEmpty)
            #expect(try allPending(log).map(\.payload) == Array(torn.payloads.prefix(19)))
            #expect(log.nextSequenceNumber == 20)
            #expect(try readFile(try torn.segment).count == torn.starts[19])
        }
        // Damaged: the whole last record fails its checksum. Nothing valid follows, so it is
        // quarantined (up to the end marker after it) and the next number skips the
        // reservation.
        let flipped = try Spool("last", count: 20)
        try flipped.flipBody(of: 20)
        let damaged = try readFile(try flipped.segment)
        let events = EventCollector()
        let (directory, log) = try flipped.open(events)
        defer { directory.close() }
        #expect(events.tornTails == 0)
        #expect(events.corruptions.map(\.offset) == [Int64(flipped.starts[19])])
        #expect(try events.corruptions.first?.quarantinedTo.map(readFile) == Array(damaged[flipped.starts[19]..<flipped.ends[19]]))
        #expect(Array(damaged[flipped.ends[19]...]) == RecordFormat.endMarker)
        #expect(try allPending(log).map(\.payload) == Array(flipped.payloads.prefix(19)))
        #expect(log.nextSequenceNumber > 20)
        #expect(try readFile(try flipped.segment).count == flipped.starts[19])
    }

    /// The encoding of a valid message record (checksum included) of this stream.
    private func encodedRecord(sequence: UInt64, payload: [UInt8]) -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        RecordFormat.encode(into: &writer, type: .message, sequenceNumber: sequence, enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0, body: payload)
        return writer.bytes
    }

    @Test("a payload holding the encoding of a valid record is never taken for a record",
          arguments: ["body of the record before", "length of the record before", "body of the record itself", "length of the record itself"])
    func embeddedRecord(_ damage: String) throws {
        // Record 11 carries, in its payload, whole valid records claiming to be 12 (in the
        // middle, and right at the end, where the real record 12 follows).
        let fake = Array("FAKE-FAKE-FAKE".utf8)
        let embedded = Array("head:".utf8) + encodedRecord(sequence: 12, payload: fake) + Array(":middle:".utf8) + encodedRecord(sequence: 12, payload: fake)
        var payloads = (1...30).map { payload($0, size: 60) }
        payloads[10] = embedded
        let spool = try Spool("embedded", payloads: payloads)
        let hit: Int
        switch damage {
        case "body of the record before": hit = 10; try spool.flipBody(of: 10)
        case "length of the record before": hit = 10; try spool.setLength(of: 10, to: 0x00FF_0000)
        case "body of the record itself": hit = 11; try spool.flipBody(of: 11, at: 1)
        default: hit = 11; try spool.setLength(of: 11, to: 0x00FF_0000)
        }
        let events = EventCollector()
        let (directory, log) = try spool.open(events)
        defer { directory.close() }
        let records = try allPending(log)
        #expect(records.map(\.sequenceNumber) == spool.sequences(without: [hit]))
        #expect(records.map(\.payload) == spool.payloads(without: [hit]))
        #expect(!records.contains { $0.payload == fake })
        #expect(events.corruptions.map(\.offset) == [Int64(spool.starts[hit - 1])])
        #expect(events.corruptions.first?.length == Int64(spool.ends[hit - 1] - spool.starts[hit - 1]))
    }

    @Test("bit flips in record bodies at random: exactly the hit records are missing")
    func randomBodyFlips() throws {
        var generator = SeededGenerator(seed: 0x5EED)
        for round in 0..<25 {
            let count = Int.random(in: 20...120, using: &generator)
            let spool = try Spool("random-\(round)", payloads: (1...count).map { payload($0, size: Int.random(in: 16...300, using: &generator)) })
            var hit = Set<Int>()
            for _ in 0..<Int.random(in: 1...5, using: &generator) { hit.insert(Int.random(in: 1...count, using: &generator)) }
            try spool.damage { bytes in
                for sequence in hit {
                    let at = spool.starts[sequence - 1] + 40 + Int.random(in: 0..<spool.payloads[sequence - 1].count, using: &generator)
                    bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &generator)
                }
            }
            let events = EventCollector()
            let (directory, log) = try spool.open(events)
            defer { directory.close() }
            let records = try allPending(log)
            #expect(records.map(\.payload) == spool.payloads(without: hit), "round \(round), hit \(hit.sorted())")
            #expect(log.status.pendingCount == count - hit.count)
            #expect(log.nextSequenceNumber > UInt64(count))
        }
    }

    @Test("bit flips anywhere at random: no damaged record is ever returned; what is returned is intact and in order")
    func randomFlipsAnywhere() throws {
        var generator = SeededGenerator(seed: 0xF11B)
        for round in 0..<40 {
            let count = Int.random(in: 10...60, using: &generator)
            let spool = try Spool("anywhere-\(round)", payloads: (1...count).map { payload($0, size: Int.random(in: 0...200, using: &generator)) })
            let original = try readFile(try spool.segment)
            try spool.damage { bytes in
                for _ in 0..<Int.random(in: 1...6, using: &generator) {
                    bytes[Int.random(in: 48..<bytes.count, using: &generator)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &generator)
                }
            }
            // The records with a changed byte (two flips of one bit cancel out).
            let damaged = try readFile(try spool.segment)
            // (A flip in the end marker after the last record touches no record.)
            let touched = Set((48..<spool.ends.last!).filter { original[$0] != damaged[$0] }.map { at in spool.ends.firstIndex { at < $0 }! + 1 })
            let events = EventCollector()
            let (directory, log) = try spool.open(events)
            defer { directory.close() }
            let records = try allPending(log)
            #expect(touched.isEmpty || !events.corruptions.isEmpty || events.tornTails > 0)
            let sequences = records.map(\.sequenceNumber)
            #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count, "round \(round)")
            for record in records {
                let sequence = Int(record.sequenceNumber)
                #expect(!touched.contains(sequence), "round \(round): damaged record \(sequence) returned")
                #expect(sequence >= 1 && sequence <= count && record.payload == spool.payloads[sequence - 1], "round \(round): record \(sequence) altered")
            }
            #expect(log.status.pendingCount == records.count)
        }
    }

    @Test("a segment with a quarantined range is deleted once its last record is acknowledged, not before")
    func deletionWithHole() async throws {
        let temp = TemporaryDirectory("hole-delete")
        let path = temp.sub("data")
        do {
            let directory = try DataDirectory(path: path, configuration: configuration(.none) { $0.segmentSize = 1024 })
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...40 { _ = try log.appendAndWait(SpoolEntry(payload: payload(i, size: 60))) }
            directory.close()
        }
        let segments = try segmentFiles(peerDirectory(path, "peer"))
        #expect(segments.count >= 3)
        // Record 3 of the first segment (records are 100 bytes: 9 per segment).
        var bytes = try readFile(segments[0])
        bytes[48 + 200 + 50] ^= 0x01
        try writeFile(segments[0], bytes)
        let events = EventCollector()
        let directory = try DataDirectory(path: path, configuration: configuration(.none, events: events) { $0.segmentSize = 1024 })
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(events.corruptions.count == 1)
        #expect(log.status.segmentCount == segments.count)
        #expect(try allPending(log).map(\.sequenceNumber) == [1, 2] + Array(4...40))
        #expect(segments[1].lastComponent?.string == Segment.fileName(baseSequence: 10))
        // Acknowledging the records before the hole frees no file.
        try log.acknowledge(upTo: 3)
        try await log.flush()
        #expect(try segmentFiles(peerDirectory(path, "peer")) == segments)
        #expect(log.status.segmentCount == segments.count)
        // Acknowledging the whole first segment deletes it.
        try log.acknowledge(upTo: 9)
        #expect(await eventually { (try? segmentFiles(peerDirectory(path, "peer"))) == Array(segments.dropFirst()) })
        #expect(log.status.segmentCount == segments.count - 1)
        #expect(try allPending(log).map(\.sequenceNumber) == Array(10...40))
    }
}
