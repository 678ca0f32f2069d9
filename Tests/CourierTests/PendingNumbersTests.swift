import Testing
import TestSupport
@testable import Courier

@Suite("Pending numbers")
struct PendingNumbersTests {
    @Test("the minimum and membership match a set's through in-order and out-of-order inserts, removals anywhere and up to a mark, and a number inserted again")
    func matchesSet() {
        var random = SeededGenerator(seed: 42)
        func next() -> UInt64 { random.next() >> 33 }
        var pending = PendingNumbers()
        var model: Set<UInt64> = []
        var top: UInt64 = 1
        for _ in 0..<5_000 {
            switch next() % 8 {
            case 0...3:
                pending.insert(top)
                model.insert(top)
                top += 1 + next() % 2
            case 4:
                let number = 1 + next() % top  // out of order, maybe again
                #expect(pending.insert(number) == model.insert(number).inserted)
            case 5 where next() % 8 == 0:
                let mark = (model.min() ?? top) + next() % 4
                pending.removeAll(through: mark)
                model = model.filter { $0 > mark }
            default:
                let number = model.isEmpty ? top : (next() % 2 == 0 ? model.min()! : model.randomElement(using: &random)!)
                pending.remove(number)
                model.remove(number)
            }
            #expect(pending.min == model.min())
            #expect(pending.isEmpty == model.isEmpty)
        }
        for number in UInt64(0)...(top + 1) { #expect(pending.contains(number) == model.contains(number)) }
    }
}
