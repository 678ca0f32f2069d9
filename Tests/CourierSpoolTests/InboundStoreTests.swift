import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

@Suite("Inbound state")
struct InboundStoreTests {
    @Test("processed mark, out-of-order set and reservation survive reopen")
    func acrossReopen() async throws {
        let temp = TemporaryDirectory("inbound")
        let path = temp.sub("data")
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration())
            try await directory.inbound.reserve(sender: "alice", streamID: 7, upTo: 6)
            try await directory.inbound.markProcessed(sender: "alice", streamID: 7, sequenceNumbers: [1, 2, 4])
            try directory.inbound.markProcessedAndWait(sender: "bob", streamID: 9, sequenceNumbers: [1])
            try directory.inbound.reserveAndWait(sender: "bob", streamID: 9, upTo: 3)
            let state = try #require(directory.inbound.state(sender: "alice", streamID: 7))
            #expect(state.processedUpTo == 2 && state.processedAbove == [4] && state.reservedUpTo == 6)
            directory.close()
        }
        let directory = try await DataDirectory.open(path: path, configuration: configuration())
        let state = try #require(directory.inbound.state(sender: "alice", streamID: 7))
        #expect(state.processedUpTo == 2)
        #expect(state.processedAbove == [4])
        #expect(state.reservedUpTo == 6)
        #expect(state.disposition(of: 1) == .duplicate)
        #expect(state.disposition(of: 3) == .redelivery)
        #expect(state.disposition(of: 4) == .duplicate)
        #expect(state.disposition(of: 6) == .redelivery)
        #expect(state.disposition(of: 7) == .new)
        #expect(directory.inbound.state(sender: "bob", streamID: 9)?.reservedUpTo == 3)
        // Filling the gap absorbs the out-of-order set.
        try await directory.inbound.markProcessed(sender: "alice", streamID: 7, sequenceNumbers: [3])
        #expect(directory.inbound.state(sender: "alice", streamID: 7)?.processedUpTo == 4)
        #expect(directory.inbound.state(sender: "alice", streamID: 7)?.processedAbove.isEmpty == true)
        directory.close()
        // The tool reads the same state without a lock.
        let inspected = try SpoolInspector(path: path).inboundStreams()
        #expect(inspected.map(\.sender) == ["alice", "bob"])
        #expect(inspected[0].processedUpTo == 4)
    }

    @Test("group commit batches many concurrent changes into few syncs")
    func batching() async throws {
        let temp = TemporaryDirectory("inbound-batch")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: configuration())
        defer { directory.close() }
        let before = directory.inbound.syncCount
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<16 {
                group.addTask {
                    for sequence in 1...50 {
                        try await directory.inbound.markProcessed(sender: "s\(sender)", streamID: 1, sequenceNumbers: [UInt64(sequence)])
                    }
                }
            }
            try await group.waitForAll()
        }
        let syncs = directory.inbound.syncCount - before
        #expect(syncs * 3 < 16 * 50, "syncs: \(syncs)")
        for sender in 0..<16 { #expect(directory.inbound.state(sender: "s\(sender)", streamID: 1)?.processedUpTo == 50) }
    }

    @Test("the out-of-order set is bounded")
    func bounded() async throws {
        let temp = TemporaryDirectory("inbound-bound")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: configuration(.none) { $0.inbound.maxProcessedAboveMark = 3 })
        defer { directory.close() }
        try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [3, 4, 5])
        do {
            try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [7])
            Issue.record("expected tooManyOutOfOrder")
        } catch {
            #expect(error.code == .tooManyOutOfOrder)
        }
        try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [1, 2])
        #expect(directory.inbound.state(sender: "a", streamID: 1)?.processedUpTo == 5)
    }

    @Test("compaction keeps the state; old incarnations go after their retention, the newest stays")
    func compactionAndRetention() async throws {
        let temp = TemporaryDirectory("inbound-compact")
        let path = temp.sub("data")
        let settings = configuration(.none) {
            $0.inbound.compactionThreshold = 4096
            $0.inbound.retainOldStreamsFor = .milliseconds(50)
        }
        do {
            let directory = try await DataDirectory.open(path: path, configuration: settings)
            try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [1])
            // Let the first incarnation age past its retention (polled, with a deadline).
            let clock = ContinuousClock()
            let start = clock.now
            #expect(await eventually { clock.now - start > .milliseconds(60) })
            for sequence in 1...400 {
                try await directory.inbound.markProcessed(sender: "a", streamID: 2, sequenceNumbers: [UInt64(sequence)])
                try await directory.inbound.markProcessed(sender: "b", streamID: 3, sequenceNumbers: [UInt64(sequence)])
            }
            #expect(directory.inbound.state(sender: "a", streamID: 1) == nil)
            directory.close()
        }
        let journal = path.appending("inbound").appending("inbound.journal")
        #expect(try readFile(journal).count < 8192)
        let directory = try await DataDirectory.open(path: path, configuration: settings)
        defer { directory.close() }
        #expect(directory.inbound.state(sender: "a", streamID: 2)?.processedUpTo == 400)
        #expect(directory.inbound.state(sender: "b", streamID: 3)?.processedUpTo == 400)
        #expect(directory.inbound.state(sender: "a", streamID: 1) == nil)
    }

    @Test("a torn journal tail is truncated; earlier state is kept")
    func tornJournal() async throws {
        let temp = TemporaryDirectory("inbound-torn")
        let path = temp.sub("data")
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration())
            for sequence in 1...5 { try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [UInt64(sequence)]) }
            directory.close()
        }
        let journal = path.appending("inbound").appending("inbound.journal")
        let bytes = try readFile(journal)
        try writeFile(journal, Array(bytes.dropLast(10)))
        let events = EventCollector()
        let directory = try await DataDirectory.open(path: path, configuration: configuration(events: events))
        defer { directory.close() }
        #expect(directory.inbound.state(sender: "a", streamID: 1)?.processedUpTo == 4)
        #expect(events.tornTails == 1)
    }

    @Test("a journal cut inside its header starts afresh and keeps working")
    func tornHeader() async throws {
        let temp = TemporaryDirectory("inbound-header")
        let path = temp.sub("data")
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration())
            directory.close()
        }
        let journal = path.appending("inbound").appending("inbound.journal")
        try writeFile(journal, Array(try readFile(journal).prefix(20)))
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration())
            #expect(directory.inbound.allStreams.isEmpty)
            try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [1])
            directory.close()
        }
        let events = EventCollector()
        let directory = try await DataDirectory.open(path: path, configuration: configuration(events: events))
        defer { directory.close() }
        #expect(events.all.isEmpty)
        #expect(directory.inbound.state(sender: "a", streamID: 1)?.processedUpTo == 1)
    }
}
