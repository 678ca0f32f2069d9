import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

@Suite("Dead letters")
struct DeadLetterTests {
    @Test("store with reason and time, list across reopen, requeue with a new sequence number")
    func deadLettersAndRequeue() async throws {
        let temp = TemporaryDirectory("dlq")
        let path = temp.sub("data")
        do {
            let directory = try await DataDirectory.open(path: path, configuration: configuration())
            let log = try await directory.outboundLog(for: "peer")
            for i in 1...3 { _ = try await log.append(SpoolEntry(payload: payload(i), expiresAt: i == 2 ? 42 : nil, flags: 6)) }
            let records = try allPending(log)
            try await log.deadLetters.add(records[1], streamID: log.streamID, reason: .rejected("bad input"))
            try await log.deadLetters.add(records[2], streamID: log.streamID, reason: .expired)
            try await log.deadLetters.add(records[0], streamID: log.streamID, reason: .deadLettered("10 attempts"))
            #expect(log.deadLetters.count == 3)
            try log.acknowledge(upTo: 3)
            directory.close()
        }
        let directory = try await DataDirectory.open(path: path, configuration: configuration())
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        let letters = try await log.deadLetters.list()
        #expect(letters.map(\.record.sequenceNumber) == [2, 3, 1])
        #expect(letters.map(\.reason) == [.rejected("bad input"), .expired, .deadLettered("10 attempts")])
        #expect(letters[0].record.payload == payload(2))
        #expect(letters[0].record.expiresAt == 42)
        #expect(letters[0].record.flags == 6)
        #expect(letters[0].streamID == log.streamID)
        #expect(letters.allSatisfy { $0.deadLetteredAt > 0 })
        // The tool sees the same, without a lock.
        #expect(try SpoolInspector(path: path).deadLetters(peer: "peer") == letters)

        let sequence = try await log.deadLetters.requeue(letters[0].id)
        #expect(sequence == 4)
        let again = try await log.deadLetters.requeue(letters[1].id)
        #expect(again == 5)
        #expect(try await log.deadLetters.list().map(\.id) == [letters[2].id])
        let pending = try allPending(log)
        #expect(pending.map(\.sequenceNumber) == [4, 5])
        #expect(pending[0].payload == payload(2) && pending[0].expiresAt == 42 && pending[0].flags == 6)
        try log.deadLetters.remove(letters[2].id)  // (blocking form: no async overload)
        #expect(log.deadLetters.count == 0)
        await #expect(throws: SpoolError.self) { _ = try await log.deadLetters.requeue(letters[2].id) }
    }

    @Test("decisions stored as one job: records not given are read from the log and matched to their numbers, out of order and repeated too; a number the log does not hold gets no letter")
    func decisionsReadTheirRecords() async throws {
        let temp = TemporaryDirectory("dlq-decisions")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: configuration())
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "peer")
        for i in 1...40 { _ = try await log.append(SpoolEntry(payload: payload(i))) }
        let given = SpoolRecord(sequenceNumber: 7, enqueuedAt: 1, expiresAt: nil, attempt: 1, flags: 0, payload: [9, 9])
        let decisions: [DeadLetterStore.Decision] = [
            .init(sequence: 30, reason: .rejected("late"), record: nil),
            .init(sequence: 7, reason: .rejected("given"), record: given),
            .init(sequence: 2, reason: .rejected("early"), record: nil),
            .init(sequence: 99, reason: .rejected("never spooled"), record: nil),
            .init(sequence: 2, reason: .rejected("again"), record: nil),
            .init(sequence: 40, reason: .expired, record: nil),
        ]
        let result = await withCheckedContinuation { continuation in
            log.deadLetters.add(decisions, streamID: log.streamID) { continuation.resume(returning: $0) }
        }
        let letters = try result.get()
        #expect(letters.map(\.0) == [30, 7, 2, 99, 2, 40])
        #expect(letters.map { $0.1?.record.payload } == [payload(30), [9, 9], payload(2), nil, payload(2), payload(40)])
        #expect(letters.map { $0.1?.reason } == [.rejected("late"), .rejected("given"), .rejected("early"), nil, .rejected("again"), .expired])
        #expect(try await log.deadLetters.list().map(\.record.sequenceNumber) == [30, 7, 2, 2, 40])
        #expect(log.deadLetters.outcome(streamID: log.streamID, sequence: 40) == .expired)
        #expect(log.deadLetters.outcome(streamID: log.streamID, sequence: 99) == nil)
    }
}
