import Foundation
import InMemoryLogging
import Logging
import SystemPackage
import Testing
@testable import CourierSpool

/// The space of a wholly acknowledged active segment is given back (docs/RELIABILITY.md,
/// finding 2; docs/SPOOL-FORMAT.md, "Acknowledged mark").
@Suite("Reclaiming the active segment")
struct ReclaimTests {
    /// Bytes held by one peer's segment files.
    private func segmentBytes(_ data: FilePath) throws -> Int {
        try segmentFiles(peerDirectory(data, "peer")).reduce(0) { $0 + (try readFile($1).count) }
    }

    /// Returns once the log's thread has finished whatever it was doing when this was called
    /// (including its check of the active segment after an acknowledgement or at start): the
    /// first flush may be served in the same pass of the thread as that check, before it; the
    /// second, queued after the first completed, is served in a later pass.
    private func settle(_ log: OutboundLog) async throws {
        try await log.flush()
        try await log.flush()
    }

    @Test("everything appended, then acknowledged: at most the threshold stays on disk")
    func wholeSpoolAcknowledged() async throws {
        let temp = TemporaryDirectory("reclaim")
        let data = temp.sub("data")
        let segmentSize = 64 << 10
        let threshold = OutboundLog.acknowledgedRollThreshold(segmentSize: segmentSize)
        #expect(threshold == 16 << 10)
        #expect(OutboundLog.acknowledgedRollThreshold(segmentSize: 64 << 20) == 1 << 20)
        let events = EventCollector()
        do {
            let directory = try DataDirectory(path: data, configuration: configuration(events: events) { $0.segmentSize = segmentSize })
            defer { directory.close() }
            let log = try await directory.outboundLog(for: "peer")
            // 1,100 records of 140 bytes in appends of 50 (an append never spans segments):
            // segments of 450, 450 and 200 records, the last 28,048 bytes.
            for batch in 0..<22 {
                _ = try await log.append(contentsOf: (1...50).map { SpoolEntry(payload: payload(batch * 50 + $0, size: 100)) })
            }
            // Each file: its header, its records, the end marker after them.
            #expect(try segmentBytes(data) == 3 * (48 + 40) + 1100 * 140)
            #expect(log.status.segmentCount > 1)
            try log.acknowledge(upTo: 1100)
            // The full segments go as usual, then the active one is rolled and deleted too.
            #expect(await eventually { (try? segmentFiles(peerDirectory(data, "peer")).map { $0.lastComponent!.string }) == [Segment.fileName(baseSequence: 1101)] })
            #expect(try segmentBytes(data) <= Int(threshold))
            #expect(try segmentBytes(data) == 48)
            let status = log.status
            #expect(status.segmentCount == 1)
            #expect(status.pendingCount == 0 && status.pendingBytes == 0)
            #expect(status.nextSequenceNumber == 1101)
            #expect(status.missingRanges.isEmpty)
            // Appends go on with the next number, into the new segment.
            #expect(try await log.append(payload(1101)) == 1101)
            #expect(try allPending(log).map(\.sequenceNumber) == [1101])
        }
        let directory = try DataDirectory(path: data, configuration: configuration(events: events) { $0.segmentSize = segmentSize })
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(events.all.isEmpty)
        #expect(log.nextSequenceNumber == 1102)
        #expect(try allPending(log).map(\.payload) == [payload(1101)])
    }

    @Test("the descriptors of deleted segments are closed, so their space really comes back")
    func deletedSegmentsAreClosed() async throws {
        let temp = TemporaryDirectory("release")
        let data = temp.sub("data")
        let directory = try DataDirectory(path: data, configuration: configuration { $0.segmentSize = 64 << 10 })
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        for batch in 0..<22 {
            _ = try await log.append(contentsOf: (1...50).map { SpoolEntry(payload: payload(batch * 50 + $0, size: 100)) })
        }
        let peer = peerDirectory(data, "peer").string
        #expect(openDeletedFiles(under: peer).isEmpty)
        try log.acknowledge(upTo: 1100)
        #expect(await eventually { (try? segmentFiles(peerDirectory(data, "peer")).count) == 1 })
        // Unlinked files live on while a descriptor is open; the releaser closes them.
        #expect(await eventually { openDeletedFiles(under: peer).isEmpty }, "still open: \(openDeletedFiles(under: peer))")
    }

    /// Files under `directory` that this process still holds open although they were deleted.
    private func openDeletedFiles(under directory: String) -> [String] {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
            .filter { $0.hasPrefix(directory) && $0.hasSuffix(" (deleted)") }
    }

    @Test("below the threshold the active segment stays; once it reaches it and is all acknowledged it goes, also at open")
    func threshold() async throws {
        let temp = TemporaryDirectory("reclaim-threshold")
        let data = temp.sub("data")
        let small: (inout SpoolConfiguration) -> Void = { $0.segmentSize = 64 << 10 }  // threshold 16 KiB; records of 140 bytes
        do {
            let directory = try DataDirectory(path: data, configuration: configuration(.groupCommit, small))
            defer { directory.close() }
            let log = try await directory.outboundLog(for: "peer")
            _ = try await log.append(contentsOf: (1...100).map { SpoolEntry(payload: payload($0, size: 100)) })
            try log.acknowledge(upTo: 100)
            try await log.flush()
            try await settle(log)
            // 14,048 bytes, under the threshold: stays.
            #expect(try segmentFiles(peerDirectory(data, "peer")).map { $0.lastComponent!.string } == [Segment.fileName(baseSequence: 1)])
            #expect(try segmentBytes(data) == 48 + 100 * 140 + 40)
            // Over the threshold, not all acknowledged: stays.
            _ = try await log.append(contentsOf: (101...130).map { SpoolEntry(payload: payload($0, size: 100)) })
            try log.acknowledge(upTo: 129)
            try await log.flush()
            try await settle(log)
            #expect(try segmentFiles(peerDirectory(data, "peer")).count == 1)
            #expect(try segmentBytes(data) == 48 + 130 * 140 + 40)
            // All acknowledged: rolled and deleted.
            try log.acknowledge(upTo: 130)
            try await log.flush()
            try await settle(log)
            #expect(try segmentFiles(peerDirectory(data, "peer")).map { $0.lastComponent!.string } == [Segment.fileName(baseSequence: 131)])
            #expect(log.status.segmentCount == 1)
        }
        // A log closed with a wholly acknowledged active segment over the threshold (here made
        // with the default 64 MiB segments, whose threshold is 1 MiB) gives it back at open.
        do {
            let directory = try DataDirectory(path: data, configuration: configuration())
            defer { directory.close() }
            let log = try await directory.outboundLog(for: "peer")
            _ = try await log.append(contentsOf: (131...260).map { SpoolEntry(payload: payload($0, size: 100)) })
            try log.acknowledge(upTo: 260)
            try await log.flush()
            try await settle(log)
            #expect(try segmentBytes(data) == 48 + 130 * 140 + 40)
        }
        let events = EventCollector()
        let directory = try DataDirectory(path: data, configuration: configuration(events: events, small))
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        try await settle(log)
        #expect(try segmentFiles(peerDirectory(data, "peer")).map { $0.lastComponent!.string } == [Segment.fileName(baseSequence: 261)])
        #expect(events.all.isEmpty)
        #expect(try log.appendAndWait(SpoolEntry(payload: [1])) == 261)
    }

    @Test("a log closed right after everything was acknowledged gives the active segment back as it closes")
    func atClose() async throws {
        let temp = TemporaryDirectory("reclaim-close")
        let data = temp.sub("data")
        do {
            let directory = try DataDirectory(path: data, configuration: configuration { $0.segmentSize = 64 << 10 })
            let log = try await directory.outboundLog(for: "peer")
            _ = try await log.append(contentsOf: (1...200).map { SpoolEntry(payload: payload($0, size: 100)) })
            try log.acknowledge(upTo: 200)
            directory.close()  // the mark is written as the log closes, and the segment rolled
        }
        #expect(try segmentFiles(peerDirectory(data, "peer")).map { $0.lastComponent!.string } == [Segment.fileName(baseSequence: 201)])
        let directory = try DataDirectory(path: data, configuration: configuration())
        defer { directory.close() }
        #expect(try await directory.outboundLog(for: "peer").nextSequenceNumber == 201)
    }

    @Test("a crash at any step of the roll keeps the next sequence number")
    func crashStates() async throws {
        let temp = TemporaryDirectory("reclaim-crash")
        let data = temp.sub("data")
        do {
            // Default segments (threshold 1 MiB): the acknowledged segment stays.
            let directory = try DataDirectory(path: data, configuration: configuration())
            defer { directory.close() }
            let log = try await directory.outboundLog(for: "peer")
            _ = try await log.append(contentsOf: (1...200).map { SpoolEntry(payload: payload($0, size: 100)) })
            try log.acknowledge(upTo: 200)
            try await log.flush()
        }
        let peer = peerDirectory(data, "peer")
        let old = peer.appending(Segment.fileName(baseSequence: 1))
        let new = peer.appending(Segment.fileName(baseSequence: 201))
        #expect(try segmentFiles(peer) == [old])
        let saved = try readFile(old)
        // Reopens with 64 KiB segments (threshold 16 KiB): the 28 KB segment is given back.
        func reopen(tornTails: Int = 0, _ label: Comment) async throws {
            let events = EventCollector()
            let directory = try DataDirectory(path: data, configuration: configuration(events: events) { $0.segmentSize = 64 << 10 })
            defer { directory.close() }
            let log = try await directory.outboundLog(for: "peer")
            #expect(log.nextSequenceNumber == 201, label)
            #expect(log.status.pendingCount == 0, label)
            #expect(events.corruptions.isEmpty, label)
            #expect(events.tornTails == tornTails, label)
            try await settle(log)
        }
        // Crash after the fallback for a full disk cut the old segment back to its header,
        // before the new one was created: the mark alone says where to go on.
        try writeFile(old, Array(saved.prefix(48)))
        try await reopen("old segment cut to its header")
        #expect(try segmentFiles(peer) == [old])
        // Given back at open.
        try writeFile(old, saved)
        try await reopen("acknowledged segment at open")
        #expect(try segmentFiles(peer) == [new])
        // Crash after the new segment was created, before the old one was deleted: recovery
        // deletes the old one; the new one's base keeps the number.
        try writeFile(old, saved)
        try await reopen("new segment beside the old one")
        #expect(try segmentFiles(peer) == [new])
        // Crash before the new segment's header was written: it is removed as torn, its name
        // still keeps the number, and the old one is given back again.
        try writeFile(new, [])
        try writeFile(old, saved)
        try await reopen(tornTails: 1, "new segment without its header")
        #expect(try segmentFiles(peer) == [new])
    }

    @Test(
        "a full disk with everything acknowledged: the append gives back the active segment and succeeds",
        .rootForSmallDisk
    )
    func fullDisk() throws {
        let disk = try SmallDisk("reclaim-full", size: "512k")
        defer { disk.unmount() }
        let mount = disk.path
        let data = mount.appending("data")
        let events = EventCollector()
        let logs = InMemoryLogHandler()
        var accepted = 0
        var first = 0
        do {
            // The default segment size: the active segment never reaches the threshold here.
            let directory = try DataDirectory(path: data, configuration: configuration(.groupCommit, events: events) {
                $0.logger = Logger(label: "test", factory: { _ in logs })
            })
            defer { directory.close() }
            let log = try directory.outboundLog(for: "peer")
            func fill() throws -> SpoolError {
                while true {
                    do {
                        #expect(try log.appendAndWait(SpoolEntry(payload: payload(accepted + 1, size: 1000))) == UInt64(accepted + 1))
                        accepted += 1
                    } catch {
                        return error
                    }
                }
            }
            let error = try fill()
            #expect(error.code == .storageFull)
            #expect(accepted > 100)
            // Not everything acknowledged: still full, nothing is given back.
            try log.acknowledge(upTo: UInt64(accepted - 1))
            do {
                _ = try log.appendAndWait(SpoolEntry(payload: payload(0, size: 1000)))
                Issue.record("an append succeeded on a full disk with a record pending")
            } catch {
                #expect(error.code == .storageFull)
            }
            #expect(try segmentFiles(peerDirectory(data, "peer")).count == 1)
            // Everything acknowledged (0 pending, every send failing before the fix): the
            // next append gives the segment back and succeeds, without reopening.
            try log.acknowledge(upTo: UInt64(accepted))
            first = accepted
            #expect(try log.appendAndWait(SpoolEntry(payload: payload(accepted + 1, size: 1000))) == UInt64(accepted + 1))
            accepted += 1
            #expect(logs.entries.contains { $0.message.description.contains("gave back the space of the wholly acknowledged active segment and retried") })
            #expect(try segmentFiles(peerDirectory(data, "peer")).map { $0.lastComponent!.string } == [Segment.fileName(baseSequence: UInt64(first + 1))])
            // And the disk fills again from there.
            #expect(try fill().code == .storageFull)
            #expect(accepted > first + 100)
            #expect(log.status.pendingCount == accepted - first)
        }
        let directory = try DataDirectory(path: data, configuration: configuration(.groupCommit, events: events))
        defer { directory.close() }
        let log = try directory.outboundLog(for: "peer")
        #expect(events.corruptions.isEmpty)
        #expect(log.nextSequenceNumber == UInt64(accepted + 1))
        #expect(try allPending(log).map(\.sequenceNumber) == Array(UInt64(first + 1)...UInt64(accepted)))
    }

    @Test(
        "a full disk with room for a new segment but not the append: the old segment's space is free before the retry",
        .rootForSmallDisk
    )
    func fullDiskRoomForHeaderOnly() throws {
        let disk = try SmallDisk("reclaim-full-room", size: "512k")
        defer { disk.unmount() }
        let mount = disk.path
        let filler = mount.appending("filler")
        try writeFile(filler, [UInt8](repeating: 1, count: 64 << 10))
        let directory = try DataDirectory(path: mount.appending("data"), configuration: configuration(.groupCommit))
        defer { directory.close() }
        let log = try directory.outboundLog(for: "peer")
        var accepted = 0
        while (try? log.appendAndWait(SpoolEntry(payload: payload(accepted + 1, size: 1000)))) != nil { accepted += 1 }
        #expect(accepted > 100)
        try log.acknowledge(upTo: UInt64(accepted))
        // 64 KiB free: enough for a new segment, not for 200 KiB, which fits only once the
        // acknowledged segment's blocks are really freed (its descriptor closed).
        try FileManager.default.removeItem(atPath: filler.string)
        let big = payload(accepted + 1, size: 200 << 10)
        #expect(try log.appendAndWait(SpoolEntry(payload: big)) == UInt64(accepted + 1))
        #expect(try allPending(log).map(\.payload) == [big])
    }
}
