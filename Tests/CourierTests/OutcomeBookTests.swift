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
}
