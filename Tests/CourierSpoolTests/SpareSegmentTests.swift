import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

/// Acknowledged segment files are kept as spares and reused (docs/SPOOL-FORMAT.md, "Spare
/// segments"); the end marker and the page-boundary rule keep a reused file's stale bytes
/// from ever being read as records or mistaken for damage.
@Suite("Spare segments")
struct SpareSegmentTests {
    private func spareFiles(_ data: FilePath) throws -> [FilePath] {
        let directory = peerDirectory(data, "peer")
        return try FileManager.default.contentsOfDirectory(atPath: directory.string)
            .filter { SparePool.isSpare(fileName: $0) }.sorted().map { directory.appending($0) }
    }

    private func inode(_ path: FilePath) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path.string)[.systemFileNumber] as? Int)
    }

    /// Spares live ten minutes here unless a test says otherwise (not the 10 s default), so
    /// that a slow run on a loaded machine cannot expire them between a test's steps.
    private func spareConfiguration(_ events: EventCollector? = nil, lifetime: Duration = .seconds(600)) -> SpoolConfiguration {
        configuration(.groupCommit, events: events) {
            $0.segmentSize = 64 << 10
            $0.spareSegments = 2
            $0.testHooks.spareLifetime = lifetime
        }
    }

    /// Appends 1,000 records of 140 bytes in appends of 50 (segments of 450, 450 and 100),
    /// acknowledges the first 900 and waits for their two files to become spares.
    private func fillAndAcknowledge(_ log: OutboundLog, data: FilePath) async throws {
        for batch in 0..<20 {
            _ = try await log.append(contentsOf: (1...50).map { SpoolEntry(payload: payload(batch * 50 + $0, size: 100)) })
        }
        try log.acknowledge(upTo: 900)
        #expect(await eventually { (try? spareFiles(data).count) == 2 })
    }

    /// Opens the data directory again, collecting the events of the log's recovery.
    private func reopen(_ data: FilePath) async throws -> (DataDirectory, OutboundLog, EventCollector) {
        let events = EventCollector()
        let directory = try DataDirectory(path: data, configuration: spareConfiguration(events))
        return (directory, try await directory.outboundLog(for: "peer"), events)
    }

    /// A log whose newest segment reuses a spare: 1,000 records of 140 bytes in appends of
    /// 50 (segments of 450, 450 and 100), the first 900 acknowledged (their two files become
    /// spares), then single appends until the third segment rolls into a spare, which then
    /// holds `extra` records with the earlier use's records after them. Returns the
    /// payloads still pending and the next sequence number.
    private func reusedSpool(at data: FilePath, extra: Int = 50) async throws -> (pending: [[UInt8]], next: UInt64) {
        let directory = try DataDirectory(path: data, configuration: spareConfiguration())
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        try await fillAndAcknowledge(log, data: data)
        let spareInodes = Set(try spareFiles(data).map(inode))
        var pending = (901...1000).map { payload($0, size: 100) }
        var next: UInt64 = 1001
        var inNewSegment = 0
        while inNewSegment < extra {
            #expect(try await log.append(payload(Int(next), size: 100)) == next)
            pending.append(payload(Int(next), size: 100))
            next += 1
            if try inNewSegment > 0 || segmentFiles(peerDirectory(data, "peer")).count == 2 { inNewSegment += 1 }
        }
        let files = try segmentFiles(peerDirectory(data, "peer"))
        #expect(files.count == 2)
        let newest = try #require(files.last)
        #expect(spareInodes.contains(try inode(newest)), "the roll reused a spare file")
        #expect(try spareFiles(data).count == 1)
        // The earlier use's records are still in the file, after this use's and the marker.
        #expect(try readFile(newest).count > 48 + extra * 140 + 40)
        return (pending, next)
    }

    @Test("acknowledged segments become spares; a roll reuses one; reopening reads exactly this use's records")
    func reuseAndReopen() async throws {
        let temp = TemporaryDirectory("spare-reuse")
        let data = temp.sub("data")
        let (pending, next) = try await reusedSpool(at: data)
        let (directory, log, events) = try await reopen(data)
        defer { directory.close() }
        #expect(events.all.isEmpty, "\(events.all)")
        #expect(try allPending(log).map(\.payload) == pending)
        #expect(log.status.nextSequenceNumber == next)
        #expect(try await log.append(payload(Int(next))) == next)
        let report = try SpoolInspector(path: data).verify()
        #expect(report.problems.isEmpty && report.incompleteTails.isEmpty, "\(report)")
        // The one spare left is in the status, with its size.
        let spares = try spareFiles(data)
        let status = try SpoolInspector(path: data).status(peer: "peer")
        #expect(spares.count == 1 && status.spareFileCount == 1)
        #expect(status.spareBytes == Int64(try spares.map { try readFile($0).count }.reduce(0, +)))
    }

    @Test("a write cut short in a reused segment (stale bytes after the cut) is a torn tail; its number is reused")
    func tornWriteInReusedSegment() async throws {
        let temp = TemporaryDirectory("spare-torn")
        let data = temp.sub("data")
        let (pending, next) = try await reusedSpool(at: data)
        let segment = try #require(try segmentFiles(peerDirectory(data, "peer")).last)
        let bytes = try readFile(segment)
        let end = 48 + 50 * 140
        #expect(Array(bytes[end..<(end + 40)]) == RecordFormat.endMarker)
        // The next record written only up to the next page boundary, as a kill -9 during the
        // append's pwrite leaves it: the rest of the page cache still holds stale bytes.
        let page = Int(FileOps.pageSize)
        let boundary = (end / page + 1) * page
        var record = ByteWriter()
        RecordFormat.encode(into: &record, type: .message, sequenceNumber: next, enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0,
                            body: [UInt8](repeating: 7, count: boundary - end + 100))
        var damaged = bytes
        damaged.replaceSubrange(end..<boundary, with: record.bytes[..<(boundary - end)])
        #expect(damaged[boundary..<(boundary + 40)].contains { $0 != 0 }, "stale bytes follow the cut")
        try writeFile(segment, damaged)

        let (directory, log, events) = try await reopen(data)
        defer { directory.close() }
        #expect(events.tornTails == 1)
        #expect(events.corruptions.isEmpty)
        #expect(try allPending(log).map(\.payload) == pending)
        #expect(log.status.nextSequenceNumber == next)
        #expect(try readFile(segment).count == end)
    }

    @Test("a damaged whole last record in a reused segment is corruption: quarantined up to the marker, its number never reused")
    func damagedLastRecordInReusedSegment() async throws {
        let temp = TemporaryDirectory("spare-damaged")
        let data = temp.sub("data")
        let (pending, next) = try await reusedSpool(at: data)
        let segment = try #require(try segmentFiles(peerDirectory(data, "peer")).last)
        var bytes = try readFile(segment)
        let last = 48 + 49 * 140
        bytes[last + 60] ^= 0x10
        try writeFile(segment, bytes)

        let (directory, log, events) = try await reopen(data)
        defer { directory.close() }
        #expect(events.tornTails == 0)
        let report = try #require(events.corruptions.first)
        #expect(report.offset == Int64(last) && report.length == 140)
        #expect(try report.quarantinedTo.map(readFile) == Array(bytes[last..<(last + 140)]))
        #expect(try allPending(log).map(\.payload) == Array(pending.dropLast()))
        #expect(log.status.nextSequenceNumber > next)
    }

    @Test("unused spares are deleted after their lifetime, and leave the inspector's status")
    func sparesExpire() async throws {
        let temp = TemporaryDirectory("spare-expiry")
        let data = temp.sub("data")
        let directory = try DataDirectory(path: data, configuration: spareConfiguration(lifetime: .seconds(2)))
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        try await fillAndAcknowledge(log, data: data)
        #expect(await eventually { (try? spareFiles(data).count) == 0 })
        #expect(try allPending(log).count == 100)
        let after = try SpoolInspector(path: data).status(peer: "peer")
        #expect(after.spareFileCount == 0 && after.spareBytes == 0)
    }

    @Test("at open, spares of another stream, or beyond spareSegments, are deleted")
    func sparesCheckedAtOpen() async throws {
        let temp = TemporaryDirectory("spare-open")
        let data = temp.sub("data")
        _ = try await reusedSpool(at: data)
        let directory = peerDirectory(data, "peer")
        let foreign = directory.appending("spare-00000000000000000007.log")
        try writeFile(foreign, FileHeader(kind: .segment, streamID: 42, baseSequence: 7, createdAt: 0).encoded() + [UInt8](repeating: 1, count: 100))
        #expect(try spareFiles(data).count == 2)
        do {
            let opened = try DataDirectory(path: data, configuration: spareConfiguration())
            _ = try await opened.outboundLog(for: "peer")
            #expect(try spareFiles(data).count == 1)
            #expect(!FileManager.default.fileExists(atPath: foreign.string))
            opened.close()
        }
        let none = try DataDirectory(path: data, configuration: configuration { $0.segmentSize = 64 << 10; $0.spareSegments = 0 })
        defer { none.close() }
        _ = try await none.outboundLog(for: "peer")
        #expect(try spareFiles(data).isEmpty)
    }

    @Test("a full disk deletes the spares and the append goes through, with records still pending", .rootForSmallDisk)
    func fullDiskDeletesSpares() throws {
        let disk = try SmallDisk("spare-full", size: "1m")
        defer { disk.unmount() }
        let data = disk.path.appending("data")
        let directory = try DataDirectory(path: data, configuration: configuration(.groupCommit) {
            $0.segmentSize = 64 << 10
            $0.spareSegments = 2
        })
        defer { directory.close() }
        let log = try directory.outboundLog(for: "peer")
        for i in 1...300 { _ = try log.appendAndWait(SpoolEntry(payload: payload(i, size: 1000))) }
        try log.acknowledge(upTo: 150)
        let spares = { (try? FileManager.default.contentsOfDirectory(atPath: peerDirectory(data, "peer").string))?.filter { SparePool.isSpare(fileName: $0) }.count }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while spares() != 2 && clock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(spares() == 2)
        // Fill the disk: the next appends (into the active segment, a new file that is not
        // full yet) need the spares' space.
        var stat = statvfs()
        #expect(statvfs(disk.path.string, &stat) == 0)
        let free = Int(stat.f_bavail) * Int(stat.f_frsize)
        try writeFile(disk.path.appending("filler"), [UInt8](repeating: 1, count: free))
        #expect(statvfs(disk.path.string, &stat) == 0 && stat.f_bavail == 0)
        for i in 301...360 { #expect(try log.appendAndWait(SpoolEntry(payload: payload(i, size: 1000))) == UInt64(i)) }
        #expect(spares() == 0)
        #expect(try allPending(log).map(\.sequenceNumber) == Array(151...360))
    }

    @Test("a version-1 segment (an older release's) gets no end marker and reads as before")
    func versionOneSegment() async throws {
        let temp = TemporaryDirectory("spare-v1")
        let data = temp.sub("data")
        let stream: UInt64
        do {
            let directory = try DataDirectory(path: data, configuration: spareConfiguration())
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...3 { _ = try await log.append(payload(i)) }
            stream = log.status.streamID
            directory.close()
        }
        // Rewrite the segment as version 1 would have: header version 1, no marker.
        let segment = try #require(try segmentFiles(peerDirectory(data, "peer")).first)
        var records = ByteWriter()
        for i in 1...3 {
            RecordFormat.encode(into: &records, type: .message, sequenceNumber: UInt64(i), enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0, body: payload(i))
        }
        let header = FileHeader(kind: .segment, version: 1, streamID: stream, baseSequence: 1, createdAt: 1).encoded()
        try writeFile(segment, header + records.bytes)
        let events = EventCollector()
        do {
            let directory = try DataDirectory(path: data, configuration: spareConfiguration(events))
            let log = try await directory.outboundLog(for: "peer")
            #expect(try await log.append(payload(4)) == 4)
            directory.close()
        }
        let size = try readFile(segment).count
        #expect(size == 48 + records.bytes.count + 40 + payload(4).count, "appended without a marker")
        let directory = try DataDirectory(path: data, configuration: spareConfiguration(events))
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(events.all.isEmpty, "\(events.all)")
        #expect(try allPending(log).map(\.payload) == (1...4).map { payload($0) })
    }
}

/// The scanner's rules for the end of a version-2 segment's records, on crafted files.
@Suite("Version-2 segment ends")
struct SegmentEndTests {
    private let page = Int(FileOps.pageSize)

    /// A version-2 segment: header, records 1... filling exactly up to `recordsEnd` (the
    /// last record's body sized to land there), then `tail`.
    private func file(recordsEnd: Int, tail: [UInt8]) -> [UInt8] {
        records(upTo: recordsEnd).bytes + tail
    }

    private func records(upTo recordsEnd: Int) -> (bytes: [UInt8], next: UInt64) {
        var writer = ByteWriter()
        writer.append(FileHeader(kind: .segment, streamID: 9, baseSequence: 1, createdAt: 1).encoded())
        var sequence: UInt64 = 1
        while recordsEnd - writer.bytes.count >= 2 * 140 {
            RecordFormat.encode(into: &writer, type: .message, sequenceNumber: sequence, enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0, body: payload(Int(sequence), size: 100))
            sequence += 1
        }
        RecordFormat.encode(into: &writer, type: .message, sequenceNumber: sequence, enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0,
                            body: [UInt8](repeating: 3, count: recordsEnd - writer.bytes.count - 40))
        return (writer.bytes, sequence + 1)
    }

    private func scan(_ bytes: [UInt8]) throws -> RecordScanner.Result {
        let temp = TemporaryDirectory("segment-end")
        let path = temp.sub("seg")
        try writeFile(path, bytes)
        let fd = try FileDescriptor.open(path, .readOnly)
        defer { try? fd.close() }
        return try RecordScanner(maxRecordSize: 1 << 20, expectedStreamID: 9, expectedBase: 1, isLast: true).scan(fd)
    }

    private let stale = (0..<2000).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }

    @Test("the end marker ends the records, whatever follows it")
    func markerEnds() throws {
        let result = try scan(file(recordsEnd: 1000, tail: RecordFormat.endMarker + stale))
        #expect(result.failure == nil)
        #expect(result.end == 1000)
    }

    @Test("stale bytes starting exactly on a page boundary: a write cut there")
    func cutAtBoundary() throws {
        let result = try scan(file(recordsEnd: page, tail: stale))
        #expect(result.failure?.kind == .tornTail)
        #expect(result.failure?.offset == Int64(page))
        // The same bytes off a boundary are damage.
        let off = try scan(file(recordsEnd: page - 100, tail: stale))
        #expect(off.failure?.kind == .corrupt)
    }

    @Test("a record crossing a page boundary with stale bytes after the cut is torn; followed by the marker, it is damage")
    func crossingRecord() throws {
        let start = page - 300
        let (base, sequence) = records(upTo: start)
        var record = ByteWriter()
        RecordFormat.encode(into: &record, type: .message, sequenceNumber: sequence, enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0, body: [UInt8](repeating: 5, count: 500))
        // Cut at the boundary: the first 300 bytes of the record, then stale bytes.
        let torn = try scan(base + record.bytes[..<300] + stale)
        #expect(torn.failure?.kind == .tornTail)
        #expect(torn.failure?.offset == Int64(start))
        // Whole, one bit flipped, the marker after it: corruption, ending at the marker.
        var flipped = record.bytes
        flipped[100] ^= 1
        let damaged = try scan(base + flipped + RecordFormat.endMarker + stale)
        #expect(damaged.failure?.kind == .corrupt)
        #expect(damaged.failure?.end == Int64(start + 540))
        // Whole, its length field flipped: still corruption, found by the marker after it.
        var length = record.bytes
        length[1] ^= 0x40
        let badLength = try scan(base + length + RecordFormat.endMarker + stale)
        #expect(badLength.failure?.kind == .corrupt)
        #expect(badLength.failure?.end == Int64(start + 540))
    }
}
