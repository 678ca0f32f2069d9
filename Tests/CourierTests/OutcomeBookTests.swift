import Testing
@testable import Courier

@Suite("Outcome book")
struct OutcomeBookTests {
    @Test("outcomes of a batch mixing peers and streams: each id read from its own entry, in order")
    func mixedBatch() async throws {
        let book = OutcomeBook()
        book.open(peer: "a", stream: 1, processedUpTo: 0)
        book.open(peer: "b", stream: 7, processedUpTo: 0)
        book.settle(peer: "a", processedUpTo: 3, individually: [(5, .rejected(reason: "no"))])
        book.settle(peer: "b", processedUpTo: 1, individually: [(2, .expired)])
        let ids = [
            MessageID(peer: "a", stream: 1, sequence: 1), MessageID(peer: "a", stream: 1, sequence: 5),
            MessageID(peer: "b", stream: 7, sequence: 2), MessageID(peer: "b", stream: 7, sequence: 1),
            MessageID(peer: "a", stream: 1, sequence: 3),
        ]
        #expect(try await book.outcomes(of: ids) == [.processed, .rejected(reason: "no"), .expired, .processed, .processed])
        // An id of another stream of a known peer is an error, even in the middle of a run.
        do {
            _ = try await book.outcomes(of: [ids[0], MessageID(peer: "a", stream: 2, sequence: 1)])
            Issue.record("expected unknownPeer")
        } catch {
            #expect(error.code == .unknownPeer)
        }
        // A pending id in a run waits; settling it ends the wait.
        let waiting = Task { try await book.outcomes(of: [ids[0], MessageID(peer: "a", stream: 1, sequence: 4)]) }
        book.settle(peer: "a", processedUpTo: 4, individually: [])
        #expect(try await waiting.value == [.processed, .processed])
    }

    @Test("past the memory limit, every rejection is kept and processed numbers above the mark keep their outcome; only processed ones at or below it are pruned")
    func manyRejections() async throws {
        let book = OutcomeBook()
        book.open(peer: "a", stream: 1, processedUpTo: 0)
        // 300,000 numbers: odd ones rejected, even ones processed one by one (a selective
        // acknowledgement) before the cumulative mark catches up, in chunks of 1,000.
        let total: UInt64 = 300_000
        for start in stride(from: UInt64(1), through: total, by: 1_000) {
            let chunk = (start..<(start + 1_000)).map { sequence -> (UInt64, Outcome) in
                sequence % 2 == 1 ? (sequence, .rejected(reason: "r\(sequence)")) : (sequence, .processed)
            }
            book.settle(peer: "a", processedUpTo: start > 5_000 ? start - 5_000 : 0, individually: chunk)
        }
        for sequence in [UInt64(1), 2, 99_999, 100_000, 250_001, 299_998, 299_999, 300_000] {
            let expected: Outcome = sequence % 2 == 1 ? .rejected(reason: "r\(sequence)") : .processed
            #expect(try await book.outcome(of: MessageID(peer: "a", stream: 1, sequence: sequence)) == expected)
        }
    }

    @Test("outcomes the dead letters record leave memory once the spool let go of their numbers, and are still answered; one the dead letters do not hold (a failed write) stays")
    func recordedOutcomesLeaveMemory() async throws {
        let book = OutcomeBook()
        // The dead letters hold every odd number's rejection except 5 (its write failed).
        let recorded: @Sendable (UInt64) -> Outcome? = { sequence in
            sequence % 2 == 1 && sequence != 5 ? .rejected(reason: "odd") : nil
        }
        book.open(peer: "a", stream: 1, processedUpTo: 0, decided: [3: .rejected(reason: "odd"), 21: .rejected(reason: "odd")],
                  recorded: recorded)
        #expect(book.heldCount(peer: "a") == 2)  // nothing is at or below the mark yet
        let rejections = stride(from: UInt64(1), through: 19, by: 2).map { ($0, Outcome.rejected(reason: "odd")) }
        book.settle(peer: "a", processedUpTo: 20, individually: rejections)
        #expect(book.heldCount(peer: "a") == 11)
        book.forgetRecorded(peer: "a", upTo: 10, except: [5])
        #expect(book.heldCount(peer: "a") == 7)  // 1, 3, 7, 9 went; 5 stays (not recorded)
        book.forgetRecorded(peer: "a", upTo: 30, except: [5])
        #expect(book.heldCount(peer: "a") == 2)  // 5 stays; 21 is above the processed mark
        for sequence in UInt64(1)...22 {
            let expected: Outcome? = sequence == 22 ? nil : (sequence % 2 == 1 ? .rejected(reason: "odd") : .processed)
            guard let expected else { continue }
            #expect(try await book.outcome(of: MessageID(peer: "a", stream: 1, sequence: sequence)) == expected, "\(sequence)")
        }
    }
}
