import Testing
@testable import Courier

@Suite("In-flight ledger")
struct InFlightLedgerTests {
    let t0 = ContinuousClock.now

    @Test("attempts, first-send times and bytes follow sends and the processed mark")
    func tracksSends() {
        var ledger = InFlightLedger(after: 10)
        #expect(ledger.attempts(of: 11) == 0)
        ledger.sent(11, attempt: 1, bytes: 100, at: t0)
        ledger.sent(12, attempt: 1, bytes: 50, at: t0 + .milliseconds(1))
        ledger.sent(14, attempt: 1, bytes: 10, at: t0)  // 13 skipped (a tombstone elsewhere)
        #expect(ledger.bytesInFlight == 160)
        #expect(ledger.attempts(of: 12) == 1 && ledger.attempts(of: 13) == 0)
        #expect(ledger.firstSentAt(12) == t0 + .milliseconds(1))
        // A retransmission: counted once in bytes, no longer a round-trip sample (Karn).
        ledger.sent(12, attempt: 2, bytes: 50, at: t0 + .milliseconds(5))
        #expect(ledger.bytesInFlight == 160)
        #expect(ledger.attempts(of: 12) == 2 && ledger.firstSentAt(12) == nil)
        ledger.drop(through: 12)
        #expect(ledger.bytesInFlight == 10)
        #expect(ledger.attempts(of: 11) == 0 && ledger.attempts(of: 12) == 0 && ledger.attempts(of: 14) == 1)
        ledger.forgetSendTimes()
        #expect(ledger.firstSentAt(14) == nil && ledger.attempts(of: 14) == 1)
        ledger.drop(through: 100)
        #expect(ledger.bytesInFlight == 0 && ledger.base == 101)
        ledger.sent(50, attempt: 1, bytes: 5, at: t0)   // below the mark: finished already
        #expect(ledger.bytesInFlight == 0)
    }

    @Test("a long run of sends and drops keeps the figures exact")
    func longRun() {
        var ledger = InFlightLedger(after: 0)
        var sent: UInt64 = 0
        var processed: UInt64 = 0
        for round in 0..<2000 {
            for _ in 0..<(round % 7 + 1) {
                sent += 1
                ledger.sent(sent, attempt: 1, bytes: 3, at: t0)
            }
            processed = min(sent, processed + UInt64(round % 5 + 1))
            ledger.drop(through: processed)
            #expect(ledger.bytesInFlight == Int(sent - processed) * 3)
        }
        #expect(ledger.attempts(of: sent) == (sent > processed ? 1 : 0))
    }
}
