import CoreMetrics
import Foundation
import InMemoryLogging
import Logging
import Metrics
import MetricsTestKit
import SystemPackage
import Testing
import TestSupport
@testable import CourierSpool

@Suite("Observability")
struct ObservabilityTests {
    @Test("appends and syncs are counted; corruption is logged with file and offset, counted and reported")
    func logsAndMetrics() throws {
        let metrics = testMetrics
        let peer = "observed-peer"
        let dimensions = [("peer", peer)]
        let temp = TemporaryDirectory("observe")
        let path = temp.sub("data")
        do {
            let directory = try DataDirectory(path: path, configuration: configuration { $0.segmentSize = 400 })
            let log = try directory.outboundLog(for: peer)
            for i in 1...20 { _ = try log.appendAndWait(SpoolEntry(payload: payload(i, size: 40))) }
            directory.close()
        }
        #expect(try metrics.expectCounter("courier_spool_appends_total", dimensions).totalValue == 20)
        #expect(try metrics.expectCounter("courier_spool_syncs_total", dimensions).totalValue == 20)
        #expect(try metrics.expectCounter("courier_spool_appended_bytes_total", dimensions).totalValue == 20 * 80)

        let segments = try segmentFiles(peerDirectory(path, peer))
        var bytes = try readFile(segments[0])
        bytes[48 + 20] ^= 0x40
        try writeFile(segments[0], bytes)

        let handler = InMemoryLogHandler()
        let events = EventCollector()
        let directory = try DataDirectory(path: path, configuration: configuration(events: events) {
            $0.segmentSize = 400
            $0.logger = Logger(label: "test", factory: { _ in handler })
        })
        defer { directory.close() }
        _ = try directory.outboundLog(for: peer)
        let errors = handler.entries.filter { $0.level == .error }
        #expect(errors.count == 1)
        #expect(errors.first?.metadata["offset"] == "48")
        #expect(errors.first?.metadata["file"]?.description == segments[0].string)
        #expect(events.corruptions.map(\.offset) == [48])
        #expect(events.corruptions.first?.quarantinedTo != nil)
        #expect(try metrics.expectCounter("courier_spool_corruptions_total", dimensions).totalValue == 1)
    }

    @Test("the inbound journal's syncs are counted")
    func inboundSyncs() async throws {
        let metrics = testMetrics  // bootstrapped before the store makes its counter
        let temp = TemporaryDirectory("observe-inbound")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: configuration())
        defer { directory.close() }
        let counter = try metrics.expectCounter("courier_spool_inbound_syncs_total")
        let before = counter.totalValue
        let syncsBefore = directory.inbound.syncCount
        for sequence in 1...5 {
            try await directory.inbound.markProcessed(sender: "observed-sender", streamID: 1, sequenceNumbers: [UInt64(sequence)])
        }
        let made = directory.inbound.syncCount - syncsBefore
        #expect(made >= 5)
        // Other suites' stores share the process-wide counter: it grew at least by this store's syncs.
        #expect(counter.totalValue - before >= Int64(made))
    }

    @Test("the spool's threads carry names that say what they are")
    func threadNames() async throws {
        let temp = TemporaryDirectory("observe-names")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: configuration())
        defer { directory.close() }
        _ = try await directory.outboundLog(for: "named-peer")
        func names() -> Set<String> {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return Set(tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        }
        // A new thread names itself as it starts: wait for it.
        #expect(await eventually { names().isSuperset(of: ["spool-writer", "spool-inbound"]) }, "thread names: \(names().sorted())")
    }
}
