import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

@Suite("Inspector")
struct InspectorTests {
    @Test("status, dump and verify while the node appends and deletes underneath")
    func whileOpen() async throws {
        let temp = TemporaryDirectory("inspect")
        let path = temp.sub("data")
        let directory = try await DataDirectory.open(path: path, configuration: configuration(.none) { $0.segmentSize = 2048 })
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        for i in 1...30 { _ = try await log.append(payload(i, size: 50)) }
        try log.acknowledge(upTo: 10)
        try await log.flush()
        let inspector = SpoolInspector(path: path)
        let status = try inspector.status(peer: "peer")
        #expect(status.streamID == log.streamID)
        #expect(status.acknowledgedUpTo == 10)
        #expect(status.pendingCount == 20)
        #expect(status.nextSequenceNumber == 31)
        #expect(status.oldestPendingEnqueuedAt != nil)
        #expect(try inspector.records(peer: "peer").map(\.record.sequenceNumber) == Array(11...30))
        #expect(try inspector.records(peer: "peer", from: 25, limit: 3).map(\.record.payload) == (25...27).map { payload($0, size: 50) })
        #expect(try inspector.status().lockHolderPID == getpid())

        // Keep appending and acknowledging (segments roll and are deleted) while verifying.
        let writer = Task {
            for i in 31...600 {
                _ = try await log.append(payload(i, size: 50))
                if i % 20 == 0 { try log.acknowledge(upTo: UInt64(i - 10)) }
            }
        }
        var verified = 0
        while !writer.isCancelled {
            let report = try inspector.verify()
            #expect(report.problems.isEmpty, "\(report.problems)")
            verified += 1
            _ = try inspector.status()
            if verified >= 5 && log.nextSequenceNumber > 600 { break }
            if log.nextSequenceNumber > 600 && verified > 0 { break }
            await Task.yield()
        }
        try await writer.value
        #expect(verified > 0)
        #expect(try inspector.verify().isClean)
    }
}
