import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

/// The attempt counts a node records for its next run (`attempts.log`): written by the log's
/// writer thread, read back when the log opens again, never a reason to refuse a spool.
@Suite("Outbound log attempt counts")
struct OutboundLogAttemptTests {
    @Test("recorded attempt counts are read back after a reopen; the last snapshot wins")
    func countsSurviveReopen() async throws {
        let temp = TemporaryDirectory("attempts-reopen")
        defer { temp.remove() }
        var streamID: UInt64 = 0
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            streamID = log.streamID
            #expect(log.sentAttempts == .none, "a new log has no counts")
            _ = try await log.append(contentsOf: (1...10).map { SpoolEntry(payload: payload($0)) })
            log.recordAttempts(SentAttempts(sentUpTo: 4, repeated: [2: 2]))
            log.recordAttempts(SentAttempts(sentUpTo: 7, repeated: [2: 3, 5: 2]))
            // In memory at once, whatever the writer has done.
            #expect(log.sentAttempts == SentAttempts(sentUpTo: 7, repeated: [2: 3, 5: 2]))
            directory.close()
        }
        let path = peerDirectory(temp.path, "peer").appending("attempts.log")
        #expect(FileManager.default.fileExists(atPath: path.string))
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            #expect(log.streamID == streamID)
            let restored = log.sentAttempts
            #expect(restored == SentAttempts(sentUpTo: 7, repeated: [2: 3, 5: 2]))
            #expect(restored.attempts(of: 1) == 1 && restored.attempts(of: 2) == 3 && restored.attempts(of: 5) == 2)
            #expect(restored.attempts(of: 8) == 0)
            // This run starts the file again at its first snapshot, then appends.
            log.recordAttempts(SentAttempts(sentUpTo: 9, repeated: [2: 4]))
            #expect(await eventually {
                (try? readFile(path)).map { SentAttempts.scan($0, streamID: streamID) } == SentAttempts.Scan(
                    latest: SentAttempts(sentUpTo: 9, repeated: [2: 4]), records: 1, validEnd: 44 + 12, stoppedBecause: nil)
            })
            log.recordAttempts(SentAttempts(sentUpTo: 10, repeated: [2: 4, 9: 2]))
            directory.close()
            #expect(SentAttempts.scan(try readFile(path), streamID: streamID).records == 2)
        }
        let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        #expect(log.sentAttempts == SentAttempts(sentUpTo: 10, repeated: [2: 4, 9: 2]))
    }

    @Test("the file is written without a sync, and writes are coalesced")
    func writtenWithoutSync() async throws {
        let temp = TemporaryDirectory("attempts-nosync")
        defer { temp.remove() }
        let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
        let log = try await directory.outboundLog(for: "peer")
        _ = try await log.append(contentsOf: (1...3).map { SpoolEntry(payload: payload($0)) })
        let syncsBefore = log.status.syncs
        let path = peerDirectory(temp.path, "peer").appending("attempts.log")
        for sent in UInt64(1)...3 { log.recordAttempts(SentAttempts(sentUpTo: sent)) }
        #expect(await eventually { (try? readFile(path)).flatMap { SentAttempts.scan($0, streamID: log.streamID).latest } == SentAttempts(sentUpTo: 3) })
        #expect(log.status.syncs == syncsBefore, "recording attempt counts syncs nothing")
        directory.close()
    }

    @Test("a torn or damaged snapshot costs only that snapshot; a damaged file opens, and verify does not call the spool damaged")
    func damageIsHarmless() async throws {
        let temp = TemporaryDirectory("attempts-damage")
        defer { temp.remove() }
        var streamID: UInt64 = 0
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            streamID = log.streamID
            _ = try await log.append(contentsOf: (1...10).map { SpoolEntry(payload: payload($0)) })
            directory.close()
        }
        let path = peerDirectory(temp.path, "peer").appending("attempts.log")
        let first = SentAttempts(sentUpTo: 5, repeated: [3: 2]).encoded(streamID: streamID)
        let second = SentAttempts(sentUpTo: 8, repeated: [3: 3, 6: 2]).encoded(streamID: streamID)

        // A torn second snapshot (a kill during its write): the first one holds.
        try writeFile(path, first + second.prefix(second.count - 7))
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            #expect(try await directory.outboundLog(for: "peer").sentAttempts == SentAttempts(sentUpTo: 5, repeated: [3: 2]))
            directory.close()
        }
        // A flipped bit in the only snapshot: no counts, and the log opens as before.
        var flipped = first
        flipped[45] ^= 0x10
        try writeFile(path, flipped)
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            #expect(log.sentAttempts == .none)
            #expect(log.status.nextSequenceNumber == 11 && log.status.pendingCount == 10)
            directory.close()
        }
        try writeFile(path, flipped)
        let report = try SpoolInspector(path: temp.path).verify()
        #expect(report.isClean, "attempt counts are advisory: \(report.problems)")
        #expect(try SpoolInspector(path: temp.path).status(peer: "peer").pendingCount == 10)
        // Another stream's snapshot (a rebuilt log.meta) is not taken.
        try writeFile(path, SentAttempts(sentUpTo: 9).encoded(streamID: streamID &+ 1))
        let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
        defer { directory.close() }
        #expect(try await directory.outboundLog(for: "peer").sentAttempts == .none)
    }

    @Test("verify checks a sound attempts file and counts it")
    func verifyCountsTheFile() async throws {
        let temp = TemporaryDirectory("attempts-verify")
        defer { temp.remove() }
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            _ = try await log.append(contentsOf: (1...3).map { SpoolEntry(payload: payload($0)) })
            directory.close()
        }
        let before = try SpoolInspector(path: temp.path).verify()
        do {
            let directory = try await DataDirectory.open(path: temp.path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            log.recordAttempts(SentAttempts(sentUpTo: 3, repeated: [1: 2]))
            directory.close()
        }
        let after = try SpoolInspector(path: temp.path).verify()
        #expect(after.isClean)
        #expect(after.filesChecked == before.filesChecked + 1)
        #expect(after.recordsChecked == before.recordsChecked + 1)
    }

    @Test("past the size threshold a snapshot starts a new file")
    func rewrittenPastThreshold() async throws {
        let temp = TemporaryDirectory("attempts-rewrite")
        defer { temp.remove() }
        let directory = FilePath(temp.path.string)
        let file = AttemptFile(directory: directory, streamID: 7)
        // About 12 KB each: the file is started again every ~21 snapshots.
        let big = SentAttempts(sentUpTo: 2_000, repeated: Dictionary(uniqueKeysWithValues: (1...1_000).map { (UInt64($0), UInt32(2)) }))
        for _ in 0..<50 { try file.write(big) }
        try file.write(SentAttempts(sentUpTo: 2_001))
        let bytes = try readFile(directory.appending("attempts.log"))
        #expect(bytes.count <= AttemptFile.rewriteThreshold)
        let scan = SentAttempts.scan(bytes, streamID: 7)
        #expect(scan.latest == SentAttempts(sentUpTo: 2_001))
        #expect(scan.stoppedBecause == nil)
        #expect(!FileManager.default.fileExists(atPath: directory.appending("attempts.log.tmp").string))
    }
}
