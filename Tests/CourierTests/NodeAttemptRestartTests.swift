import CourierSpool
import Foundation
import Synchronization
import Testing
import ZeroMQ
@testable import Courier

/// Attempts counted across restarts of the sending node: the `attempt` field the receiver
/// sees goes on where the previous run left off, and `maxAttempts` counts every run.
@Suite("Attempts across sender restarts", .timeLimit(.minutes(2)))
struct NodeAttemptRestartTests {
    @Test("a restarted sender continues the attempt numbers, and maxAttempts counts both runs")
    func attemptsContinueAcrossRestart() async throws {
        let directory = TemporaryDirectory("attempt-restart")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        // Takes data, never acknowledges, and each WELCOME says nothing arrived: every
        // retransmission timeout sends everything again, as a new attempt.
        let fake = AttemptRecorder(at: endpoint)
        defer { fake.stop() }
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [endpoint])])
        settings.maxAttempts = 4
        settings.retransmission.initialTimeout = .milliseconds(250)
        settings.retransmission.minimumTimeout = .milliseconds(200)
        settings.retransmission.maximumTimeout = .milliseconds(400)

        // Run 1, without a limit (a loaded machine may let it make any number of attempts
        // before the test looks): both messages go twice at least, then the node stops.
        var unlimited = settings
        unlimited.maxAttempts = nil
        let first = try await Node.start(unlimited)
        _ = try await first.send(batch: [Array("one".utf8), Array("two".utf8)], to: "r")
        try await fake.waitUntil("a retransmission in run 1") { state in
            (1...2).allSatisfy { sequence in (state.records[sequence] ?? []).count >= 2 }
        }
        await first.shutdown(timeout: .zero)
        let firstRun = fake.state.withLock { $0.records }

        // Run 2, same data directory: attempts go on, and the numbers are given up once the
        // two runs together made four attempts.
        let second = try await Node.start(settings)
        try await within(.seconds(20), "dead-lettering in run 2") {
            while (second.statistics(for: "r")?.deadLettered ?? 0) < 2 { try await Task.sleep(for: .milliseconds(10)) }
        }
        try await fake.waitUntil("tombstones") { state in
            (1...2).allSatisfy { sequence in (state.records[sequence] ?? []).contains { $0.tombstone } }
        }
        await second.shutdown(timeout: .zero)
        try await fake.finish()

        let all = fake.state.withLock { $0.records }
        for sequence in UInt64(1)...2 {
            let records = all[sequence] ?? []
            let before = firstRun[sequence] ?? []
            let after = Array(records.dropFirst(before.count))
            #expect(before.count >= 2 && !after.isEmpty)
            // Never back to 1: every transmission, across both runs, is the next attempt.
            #expect(records.map(\.attempt) == Array(1...UInt32(records.count)), "attempts of \(sequence): \(records.map(\.attempt))")
            #expect(after.first?.attempt == (before.last?.attempt ?? 0) + 1)
            // Four attempts with data in all (or as many as run 1 made, if more), then only
            // tombstones: run 2 counts run 1's.
            let limit = max(4, before.count)
            #expect(records.filter { !$0.tombstone }.map(\.attempt) == Array(1...UInt32(limit)))
            #expect(records.first { $0.tombstone }?.attempt == UInt32(limit + 1))
        }
    }
}

/// A receiver that never acknowledges: it answers each HELLO with a WELCOME saying it holds
/// nothing beyond the sender's first unacknowledged number, and records every DATA record's
/// attempt and whether it was a tombstone.
typealias AttemptRecorder = FakeRouter<AttemptRecorderState>

struct AttemptRecorderState {
    struct Sent: Equatable {
        var attempt: UInt32
        var tombstone: Bool
    }

    var records: [UInt64: [Sent]] = [:]
}

extension FakeRouter where State == AttemptRecorderState {
    convenience init(at endpoint: String) {
        self.init(at: endpoint, name: "attempt-recorder", state: State()) { frame, state in
            switch frame {
            case .hello(let hello):
                let held = hello.firstUnacknowledged - 1
                return [Reply(.welcome(.init(stream: hello.stream, processedUpTo: held, receivedUpTo: held)))]
            case .data(let batch):
                for record in batch.records {
                    state.records[record.sequence, default: []].append(.init(attempt: record.attempt, tombstone: record.isTombstone))
                }
                return []
            default:
                return []
            }
        }
    }
}
