import Foundation
import MetricsTestKit
import SystemPackage
import Testing
import TestSupport
@testable import CourierSpool

/// Damage in the middle of the dead-letter store and the inbound journal costs only the
/// damaged records (docs/SPOOL-FORMAT.md, "Recovery on open", step 5).
@Suite("Record files resynchronise after damage")
struct RecordFileResyncTests {
    /// The records of a whole record file, with their offsets.
    private func records(_ file: FilePath, _ kind: FileHeader.Kind) throws -> [RecordFile.Entry] {
        let scan = RecordFile.scanRecords(try readFile(file), kind: kind, maxRecordSize: 1 << 26, tolerateTornTail: true)
        #expect(scan.failure == nil && scan.damaged.isEmpty)
        return scan.entries
    }

    /// Flips one bit at `offset` of `file`.
    private func flip(_ file: FilePath, at offset: Int) throws {
        var bytes = try readFile(file)
        bytes[offset] ^= 0x10
        try writeFile(file, bytes)
    }

    @Test("a damaged snapshot in the middle of the inbound journal: later snapshots are kept, reported once")
    func inboundJournal() async throws {
        let temp = TemporaryDirectory("resync-inbound")
        let path = temp.sub("data")
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration())
            for sequence in 1...5 {
                try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [UInt64(sequence)])
            }
            try await directory.inbound.markProcessed(sender: "b", streamID: 2, sequenceNumbers: [1])
            directory.close()
        }
        let journal = path.appending("inbound").appending("inbound.journal")
        let entries = try records(journal, .inbound)
        #expect(entries.count == 6)
        let damaged = entries[2]  // the snapshot of "a" at 3
        try flip(journal, at: Int(damaged.offset) + RecordFormat.headerSize + 2)
        // The tool sees the damaged range before the node has set it aside.
        #expect(try SpoolInspector(path: path).verify().problems.map(\.offset) == [damaged.offset])

        let metrics = testMetrics  // bootstrapped before the store counts the corruption
        let counted = (try? metrics.expectCounter("courier_spool_inbound_corruptions_total").totalValue) ?? 0
        let events = EventCollector()
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration(events: events))
            // Before, damage here cost everything after it: "a" would be back at 2, "b" unknown.
            #expect(directory.inbound.state(sender: "a", streamID: 1)?.processedUpTo == 5)
            #expect(directory.inbound.state(sender: "b", streamID: 2)?.processedUpTo == 1)
            try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [6])
            directory.close()
        }
        // Other suites' journals may count too: at least this one.
        #expect(try metrics.expectCounter("courier_spool_inbound_corruptions_total").totalValue >= counted + 1)
        let report = try #require(events.corruptions.first)
        #expect(events.corruptions.count == 1)
        #expect(report.offset == damaged.offset)
        #expect(report.length == Int64(damaged.header.length))
        let kept = try readFile(try #require(report.quarantinedTo))
        #expect(kept == Array(try readFile(journal)[Int(damaged.offset)..<(Int(damaged.offset) + damaged.header.length)]))
        // Quarantined now: the bytes stay in the file, skipped, and are no longer a problem.
        #expect(try SpoolInspector(path: path).verify().problems.isEmpty)

        // The range is found again at the next open, but reported only once.
        let again = EventCollector()
        let directory = try await DataDirectory.open(path: path, configuration: configuration(events: again))
        defer { directory.close() }
        #expect(again.all.isEmpty)
        #expect(directory.inbound.state(sender: "a", streamID: 1)?.processedUpTo == 6)
    }

    @Test("a damaged dead letter in the middle costs only itself, even with its length field damaged")
    func deadLetters() async throws {
        let temp = TemporaryDirectory("resync-dlq")
        let path = temp.sub("data")
        func populate() async throws {
            let directory = try await DataDirectory.open(path: path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...4 { _ = try await log.append(payload(i, size: 200)) }
            let pending = try allPending(log)
            for record in pending { try await log.deadLetters.add(record, streamID: log.streamID, reason: .rejected("no")) }
            try log.acknowledge(upTo: 4)
            directory.close()
        }
        try await populate()
        let file = peerDirectory(path, "peer").appending("deadletters.log")
        let entries = try records(file, .deadLetters)
        #expect(entries.count == 4)
        try flip(file, at: Int(entries[1].offset) + RecordFormat.headerSize + 50)

        let events = EventCollector()
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration(events: events))
            let log = try await directory.outboundLog(for: "peer")
            #expect(try await log.deadLetters.list().map(\.record.sequenceNumber) == [1, 3, 4])
            // New dead letters go on at the end, after the damaged range.
            _ = try await log.append(payload(5))
            try await log.deadLetters.add(try allPending(log)[0], streamID: log.streamID, reason: .expired)
            #expect(try await log.deadLetters.list().map(\.record.sequenceNumber) == [1, 3, 4, 5])
            directory.close()
        }
        #expect(events.corruptions.map(\.offset) == [entries[1].offset])
        #expect(events.corruptions.first?.length == Int64(entries[1].header.length))
        #expect(try SpoolInspector(path: path).deadLetters(peer: "peer").map(\.record.sequenceNumber) == [1, 3, 4, 5])

        // A damaged length field cannot be followed, so the one resynchronisation rule (the
        // segments' rule, for every record file) searches byte by byte for a good dead-letter
        // record that a good record (or the end of the file) follows: only the damaged one is
        // lost. (Before the rule was one, a record file lost everything from there to its end.)
        try FileManager.default.removeItem(atPath: path.string)
        try await populate()
        try flip(file, at: Int(entries[1].offset) + 1)
        let cut = EventCollector()
        let directory = try await DataDirectory.open(path: path, configuration: configuration(events: cut))
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(try await log.deadLetters.list().map(\.record.sequenceNumber) == [1, 3, 4])
        #expect(cut.corruptions.map(\.offset) == [entries[1].offset])
        #expect(cut.corruptions.first?.length == Int64(entries[1].header.length))
    }

    @Test("one rule: an inbound journal record with a damaged length field costs only itself")
    func damagedLengthInJournal() {
        var writer = ByteWriter()
        writer.append(FileHeader(kind: .inbound, streamID: 0, baseSequence: 0, createdAt: 1).encoded())
        var offsets: [Int] = []
        for i in 1...3 {
            offsets.append(writer.bytes.count)
            RecordFormat.encode(into: &writer, type: .inboundState, sequenceNumber: UInt64(i), enqueuedAt: 1, expiresAt: nil,
                                attempt: 0, flags: 0, body: [UInt8](repeating: UInt8(i), count: 100))
        }
        var bytes = writer.bytes
        bytes[offsets[1] + 1] ^= 0x10  // the second record's length field
        let scan = RecordFile.scanRecords(bytes, kind: .inbound, maxRecordSize: 1 << 26, tolerateTornTail: true)
        #expect(scan.failure == nil)
        #expect(scan.entries.map(\.header.sequenceNumber) == [1, 3])
        #expect(scan.damaged.map(\.offset) == [Int64(offsets[1])])
        #expect(scan.damaged.map(\.end) == [Int64(offsets[2])])
    }
}
