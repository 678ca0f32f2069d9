import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

@Suite("Recovery")
struct RecoveryTests {
    /// Writes `count` records to one peer's log and returns the payloads and the end offset
    /// of each record in the (single) segment.
    private func makeSpool(at path: FilePath, count: Int, size: (Int) -> Int) throws -> (payloads: [[UInt8]], ends: [Int]) {
        let directory = try DataDirectory(path: path, configuration: configuration(.none))
        let log = try directory.outboundLog(for: "peer")
        var payloads: [[UInt8]] = []
        var ends: [Int] = []
        var end = 48
        for i in 1...count {
            let body = payload(i, size: size(i))
            payloads.append(body)
            _ = try log.appendAndWait(SpoolEntry(payload: body))
            end += 40 + body.count
            ends.append(end)
        }
        directory.close()
        return (payloads, ends)
    }

    @Test("truncation at every byte offset leaves exactly a prefix")
    func truncateEveryOffset() throws {
        let source = TemporaryDirectory("trunc-src")
        let work = TemporaryDirectory("trunc-work")
        let (payloads, ends) = try makeSpool(at: source.sub("data"), count: 16, size: { 12 + ($0 * 7) % 23 })
        let segment = try segmentFiles(peerDirectory(source.sub("data"), "peer")).first!
        let bytes = try readFile(segment)
        // The header, the records, the 40-byte end marker.
        #expect(bytes.count == ends.last! + 40)
        var failures: [String] = []
        for offset in 0...bytes.count {
            let data = work.sub("data")
            try copyDirectory(source.sub("data"), to: data)
            let copy = try segmentFiles(peerDirectory(data, "peer")).first!
            try writeFile(copy, Array(bytes[..<offset]))
            let events = EventCollector()
            do {
                let directory = try DataDirectory(path: data, configuration: configuration(.none, events: events))
                defer { directory.close() }
                let log = try directory.outboundLog(for: "peer")
                let records = try allPending(log)
                let expected = ends.filter { $0 <= offset }.count
                if records.count != expected || records.map(\.payload) != Array(payloads.prefix(expected)) {
                    failures.append("offset \(offset): got \(records.count) records, expected \(expected)")
                }
                if !events.corruptions.isEmpty { failures.append("offset \(offset): reported corruption \(events.corruptions)") }
                // A cut inside the end marker leaves zeros after the last record: its end.
                let torn = offset < ends.last! && offset != 48 && !ends.contains(offset)
                if torn && events.tornTails != 1 { failures.append("offset \(offset): torn tail not reported") }
                // The log keeps working after recovery.
                let next = try log.appendAndWait(SpoolEntry(payload: [9]))
                if next != UInt64(expected + 1) { failures.append("offset \(offset): next sequence \(next)") }
            } catch {
                failures.append("offset \(offset): \(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10))")
    }

    @Test("a bit flip at every offset is detected; nothing damaged is returned; every other record is kept")
    func flipEveryOffset() throws {
        let source = TemporaryDirectory("flip-src")
        let work = TemporaryDirectory("flip-work")
        let count = 8
        let (payloads, ends) = try makeSpool(at: source.sub("data"), count: count, size: { 10 + $0 * 3 })
        let segment = try segmentFiles(peerDirectory(source.sub("data"), "peer")).first!
        let bytes = try readFile(segment)
        var failures: [String] = []
        for offset in 0..<bytes.count {
            let data = work.sub("data")
            try copyDirectory(source.sub("data"), to: data)
            let copy = try segmentFiles(peerDirectory(data, "peer")).first!
            var damaged = bytes
            damaged[offset] ^= UInt8(1 << (offset % 8))
            try writeFile(copy, damaged)
            let events = EventCollector()
            do {
                let directory = try DataDirectory(path: data, configuration: configuration(.none, events: events))
                defer { directory.close() }
                let log = try directory.outboundLog(for: "peer")
                let records = try allPending(log)
                // The record the flipped byte belongs to (nil for the file header, which costs
                // the whole segment). Every other record is kept: recovery resynchronises on
                // the next valid record.
                // A flip in the end marker hits no record: all are kept.
                let inMarker = offset >= ends.last!
                let hit = offset < 48 || inMarker ? nil : ends.firstIndex { offset < $0 }!
                let expected = hit.map { hit in payloads.indices.filter { $0 != hit }.map { payloads[$0] } } ?? (inMarker ? payloads : [])
                if records.map(\.payload) != expected {
                    failures.append("offset \(offset): got \(records.map(\.sequenceNumber)), expected all but \(hit.map { "\($0 + 1)" } ?? "all")")
                }
                if let hit, records.map(\.sequenceNumber) != (1...UInt64(count)).filter({ $0 != UInt64(hit + 1) }) {
                    failures.append("offset \(offset): sequence numbers \(records.map(\.sequenceNumber))")
                }
                if events.corruptions.isEmpty && events.tornTails == 0 {
                    failures.append("offset \(offset): not detected")
                }
                // The quarantine file holds exactly the damaged record.
                if let hit, let report = events.corruptions.first {
                    let start = hit == 0 ? 48 : ends[hit - 1]
                    let kept = try report.quarantinedTo.map(readFile)
                    if report.offset != Int64(start) || kept != Array(damaged[start..<ends[hit]]) || report.length != Int64(ends[hit] - start) {
                        failures.append("offset \(offset): reported \(report), expected bytes \(start)..<\(ends[hit])")
                    }
                }
                if log.nextSequenceNumber <= UInt64(count) {
                    failures.append("offset \(offset): next sequence \(log.nextSequenceNumber) reuses a handed-out number")
                }
            } catch {
                failures.append("offset \(offset): \(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10))")
        // Quarantined bytes are kept for the tool.
        let inspector = SpoolInspector(path: work.sub("data"))
        #expect(try inspector.status(peer: "peer").quarantinedFiles.count == 1)
    }

    @Test("sequence numbers are never reused: reopen, all acknowledged, quarantine")
    func sequenceNeverReused() async throws {
        let temp = TemporaryDirectory("seq")
        let path = temp.sub("data")
        do {
            let directory = try DataDirectory(path: path, configuration: configuration { $0.segmentSize = 512 })
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...50 { #expect(try log.appendAndWait(SpoolEntry(payload: payload(i, size: 40))) == UInt64(i)) }
            try log.acknowledge(upTo: 50)
            #expect(await eventually { log.status.segmentCount == 1 })
            directory.close()
        }
        do {
            let directory = try DataDirectory(path: path, configuration: configuration { $0.segmentSize = 512 })
            let log = try await directory.outboundLog(for: "peer")
            #expect(log.status.pendingCount == 0)
            #expect(log.nextSequenceNumber == 51)
            #expect(try log.appendAndWait(SpoolEntry(payload: [1])) == 51)
            directory.close()
        }
        // Every segment file gone (not even the newest, which the spool never deletes).
        for file in try segmentFiles(peerDirectory(path, "peer")) { try FileManager.default.removeItem(atPath: file.string) }
        do {
            let directory = try DataDirectory(path: path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            #expect(log.nextSequenceNumber > 51)
            directory.close()
        }
        // Damage in the middle of the newest segment costs only the damaged record; damage in
        // its last record (a whole record failing its checksum, not a torn write) is
        // quarantined to the end, and the next number jumps past everything that may have
        // been handed out.
        let temp2 = TemporaryDirectory("seq-q")
        let path2 = temp2.sub("data")
        do {
            let directory = try DataDirectory(path: path2, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...20 { _ = try log.appendAndWait(SpoolEntry(payload: payload(i, size: 20))) }
            directory.close()
        }
        let segment = try segmentFiles(peerDirectory(path2, "peer")).first!
        var bytes = try readFile(segment)
        bytes[48 + 60 * 9 + 45] ^= 0x10  // inside record 10
        bytes[48 + 60 * 19 + 45] ^= 0x10  // inside record 20, the last
        try writeFile(segment, bytes)
        let events = EventCollector()
        let directory = try DataDirectory(path: path2, configuration: configuration(events: events))
        let log = try await directory.outboundLog(for: "peer")
        #expect(events.corruptions.map(\.offset) == [Int64(48 + 60 * 9), Int64(48 + 60 * 19)])
        #expect(try allPending(log).map(\.sequenceNumber) == Array(1...9) + Array(11...19))
        #expect(log.nextSequenceNumber > 20)
        let status = log.status
        #expect(status.missingRanges.first == 10...10)
        #expect(status.missingRanges.dropFirst().first?.lowerBound == 20)
        let next = log.nextSequenceNumber
        directory.close()
        // The inspector (courier-spool status) sees the same next number, from the empty
        // newest segment's base.
        #expect(try SpoolInspector(path: path2).status(peer: "peer").nextSequenceNumber == next)
        // A second open before anything was appended keeps the jump: the damage is gone (it
        // was quarantined), but the empty segment started at the next number remembers it.
        let secondEvents = EventCollector()
        let second = try DataDirectory(path: path2, configuration: configuration(events: secondEvents))
        let log2 = try await second.outboundLog(for: "peer")
        #expect(secondEvents.all.isEmpty)
        #expect(log2.nextSequenceNumber == next)
        #expect(try segmentFiles(peerDirectory(path2, "peer")).last?.lastComponent?.string == Segment.fileName(baseSequence: next))
        let jumped = try log2.appendAndWait(SpoolEntry(payload: [1]))
        #expect(jumped == next)
        #expect(try log2.readPending(from: jumped, limit: 1).first?.payload == [1])
        second.close()
        // The records after the jump live in their own segment and read back cleanly; the
        // range quarantined at the last open is skipped without being reported again.
        let reopenedEvents = EventCollector()
        let reopened = try DataDirectory(path: path2, configuration: configuration(events: reopenedEvents))
        defer { reopened.close() }
        let again = try await reopened.outboundLog(for: "peer")
        #expect(reopenedEvents.all.isEmpty)
        #expect(try allPending(again).map(\.sequenceNumber) == Array(1...9) + Array(11...19) + [jumped])
        #expect(again.nextSequenceNumber == jumped + 1)
    }

    @Test("damage in an older segment quarantines only the damaged record; the rest of the segment stays")
    func olderSegmentDamage() async throws {
        let temp = TemporaryDirectory("older")
        let path = temp.sub("data")
        do {
            let directory = try DataDirectory(path: path, configuration: configuration(.none) { $0.segmentSize = 400 })
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...30 { _ = try log.appendAndWait(SpoolEntry(payload: payload(i, size: 40))) }
            directory.close()
        }
        let segments = try segmentFiles(peerDirectory(path, "peer"))
        #expect(segments.count > 3)
        var bytes = try readFile(segments[1])
        bytes[48 + 80 + 50] ^= 0x01  // the second record of the second segment
        try writeFile(segments[1], bytes)
        // The tool sees it while nothing is open.
        let report = try SpoolInspector(path: path).verify()
        #expect(report.problems.count == 1)
        #expect(report.problems.first?.path == segments[1])
        #expect(report.problems.first?.offset == Int64(48 + 80))
        let events = EventCollector()
        let directory = try DataDirectory(path: path, configuration: configuration(.none, events: events) { $0.segmentSize = 400 })
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(events.corruptions.first?.offset == Int64(48 + 80))
        let sequences = try allPending(log).map(\.sequenceNumber)
        let base = Segment.baseSequence(fromFileName: segments[1].lastComponent!.string)!
        #expect(sequences == Array(1...base) + Array((base + 2)...30))
        #expect(log.status.missingRanges == [(base + 1)...(base + 1)])
        #expect(log.status.segmentCount == segments.count)
        #expect(try SpoolInspector(path: path).verify().problems.isEmpty)
    }

    @Test("a damaged meta slot falls back to the other; both damaged is reported and rebuilt")
    func metaSlots() throws {
        let temp = TemporaryDirectory("meta")
        let path = temp.sub("data")
        var stream: UInt64 = 0
        do {
            let directory = try DataDirectory(path: path, configuration: configuration())
            let log = try directory.outboundLog(for: "peer")
            stream = log.streamID
            for i in 1...10 { _ = try log.appendAndWait(SpoolEntry(payload: payload(i))) }
            try log.acknowledge(upTo: 4)
            directory.close()
        }
        let metaPath = peerDirectory(path, "peer").appending("log.meta")
        var meta = try readFile(metaPath)
        // Damage whichever slot holds the newest generation: the older one still has a stream id.
        meta[20] ^= 0xFF
        meta[64 + 20] ^= 0xFF
        try writeFile(metaPath, meta)
        let events = EventCollector()
        let directory = try DataDirectory(path: path, configuration: configuration(events: events))
        defer { directory.close() }
        let log = try directory.outboundLog(for: "peer")
        #expect(events.corruptions.count == 1)
        #expect(log.streamID == stream)
        #expect(log.nextSequenceNumber > 10)
        #expect(try allPending(log).count == 10)  // nothing lost: the mark restarts at the oldest segment
    }
}
