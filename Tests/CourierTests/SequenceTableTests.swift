import Testing
import TestSupport
@testable import Courier

@Suite("Sequence table")
struct SequenceTableTests {
    @Test("random inserts, lookups and removals agree with Dictionary", arguments: [1, 2, 3])
    func matchesDictionary(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var table = SequenceTable<Int>()
        var reference: [UInt64: Int] = [:]
        for step in 0..<50_000 {
            // Mostly a sliding window of numbers (as on the wire), some far away, some 0.
            let key: UInt64 = switch random.next() % 10 {
            case 0: random.next() % 1_000_000_000
            case 1: 0
            default: UInt64(step / 4) + random.next() % 300
            }
            switch random.next() % 3 {
            case 0:
                #expect(table.insert(key, step) == (reference.updateValue(step, forKey: key) == nil))
            case 1:
                #expect(table.remove(key) == reference.removeValue(forKey: key))
            default:
                #expect(table[key] == reference[key])
                #expect(table.contains(key) == (reference[key] != nil))
            }
            #expect(table.count == reference.count)
        }
        #expect(table.sortedKeys() == reference.keys.sorted())
        for key in reference.keys { #expect(table[key] == reference[key]) }
        table.removeAll { $0 % 2 == 0 }
        #expect(table.sortedKeys() == reference.keys.filter { $0 % 2 == 1 }.sorted())
    }

    @Test("a set of numbers: insert reports novelty, remove reports presence")
    func set() {
        var set = SequenceSet([5, 6, 7])
        #expect(set.count == 3 && set.contains(6))
        #expect(!set.insert(6) && set.insert(8))
        #expect(set.remove(5) && !set.remove(5))
        set.removeAll { $0 <= 6 }
        #expect(set.sorted() == [7, 8])
    }
}
