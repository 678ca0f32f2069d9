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
            for i in 1...3 { _ = try await log.append(SpoolEntry(payload: payload(i), expiresAt: i == 2 ? 42 : nil, flags: 7)) }
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
        #expect(letters[0].record.flags == 7)
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
        #expect(pending[0].payload == payload(2) && pending[0].expiresAt == 42 && pending[0].flags == 7)
        try log.deadLetters.remove(letters[2].id)  // (blocking form: no async overload)
        #expect(log.deadLetters.count == 0)
        await #expect(throws: SpoolError.self) { _ = try await log.deadLetters.requeue(letters[2].id) }
    }
}
