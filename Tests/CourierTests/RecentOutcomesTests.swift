import CourierSpool
import Testing
import TestSupport
@testable import Courier

@Suite("Recent outcomes")
struct RecentOutcomesTests {
    @Test("finds, replaces and takes off the front as a dictionary would, with numbers recorded in order, out of order and again")
    func matchesDictionary() {
        var random = SeededGenerator(seed: 7)
        func next() -> UInt64 { random.next() >> 33 }
        var recent = RecentOutcomes()
        var model: [UInt64: Outcome] = [:]
        var top: UInt64 = 1
        var front: UInt64 = 0
        for step in 0..<5_000 {
            let outcome: Outcome = step % 3 == 0 ? .expired : .rejected(reason: "r\(step % 5)")
            switch next() % 10 {
            case 0...5:
                recent.record(outcome, for: top)
                model[top] = outcome
                top += 1 + next() % 3
            case 6:
                let number = front + 1 + next() % max(top - front, 1)  // out of order, or again
                recent.record(outcome, for: number)
                model[number] = outcome
            default:
                front = min(front + next() % 8, top)
                var taken: [UInt64] = []
                recent.removeFirst(upTo: front) { number, outcome in
                    #expect(model.removeValue(forKey: number) == outcome)
                    taken.append(number)
                }
                #expect(taken == taken.sorted())
                #expect(!model.keys.contains { $0 <= front })
            }
            #expect(recent.count == model.count)
        }
        for number in UInt64(0)...(top + 2) { #expect(recent[number] == model[number], "\(number)") }
    }
}
