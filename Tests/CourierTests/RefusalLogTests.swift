import Testing
@testable import Courier

@Suite("Refusal log lines are rate-limited per peer and reason")
struct RefusalLogTests {
    let start = ContinuousClock.now

    @Test("the first refusal logs, the rest of the window is counted, the next window's first line carries the count")
    func window() {
        var log = RefusalLog(window: .seconds(10))
        #expect(log.refused(peer: "m", reason: "checksum", now: start) == .log(suppressed: 0))
        for i in 1...999 {
            #expect(log.refused(peer: "m", reason: "checksum", now: start + .milliseconds(i)) == .suppress)
        }
        #expect(log.refused(peer: "m", reason: "checksum", now: start + .seconds(11)) == .log(suppressed: 999))
        #expect(log.refused(peer: "m", reason: "checksum", now: start + .seconds(12)) == .suppress)
    }

    @Test("peers and reasons have windows of their own")
    func separateKeys() {
        var log = RefusalLog(window: .seconds(10))
        #expect(log.refused(peer: "m", reason: "checksum", now: start) == .log(suppressed: 0))
        #expect(log.refused(peer: "m", reason: "truncated", now: start) == .log(suppressed: 0))
        #expect(log.refused(peer: "n", reason: "checksum", now: start) == .log(suppressed: 0))
        #expect(log.refused(peer: "n", reason: "checksum", now: start) == .suppress)
    }

    @Test("a flood from many ids shares one entry per reason beyond the capacity")
    func manyPeers() {
        var log = RefusalLog(window: .seconds(10), capacity: 4)
        var logged = 0
        for i in 0..<10_000 where log.refused(peer: "id-\(i)", reason: "checksum", now: start) != .suppress {
            logged += 1
        }
        #expect(logged == 5)  // four peers of their own, then one line for all the others
    }
}
