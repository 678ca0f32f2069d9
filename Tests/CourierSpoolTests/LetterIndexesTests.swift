import Testing
import TestSupport
@testable import CourierSpool

@Suite("Dead-letter indexes")
struct LetterIndexesTests {
    @Test("the letter index answers as a dictionary would: consecutive ids, removals anywhere, ids older than any held, ids far from every other, and the front's holes dropped", arguments: [UInt64(1), 2, 3, 4])
    func letterIndexMatchesDictionary(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var index = LetterIndex()
        var model: [UInt64: Int64] = [:]
        var nextID: UInt64 = 100
        for step in 0..<20_000 {
            switch random.next() % 10 {
            case 0...5:
                index[nextID] = LetterLocation(offset: Int64(step), length: 40)
                model[nextID] = Int64(step)
                nextID += 1
            case 6...8:
                // Remove one held letter, or one never held.
                let id = model.keys.randomElement(using: &random) ?? nextID + 5
                index[id] = nil
                model[id] = nil
            case 9 where step % 50 == 0:
                // An id far from every other (a damaged or crafted file): kept, not padded to.
                let id = random.next() % 2 == 0 ? UInt64(1) << 60 | random.next() % 1_000 : random.next() % 8
                guard id > 0 else { continue }
                index[id] = LetterLocation(offset: 7_000_000 + Int64(step), length: 40)
                model[id] = 7_000_000 + Int64(step)
            default:
                // An id older than every one held (a file listing ids out of order).
                let oldest = model.keys.min() ?? nextID
                let back = 1 + random.next() % 3
                guard oldest > back else { continue }
                let id = oldest - back
                index[id] = LetterLocation(offset: -Int64(step), length: 40)
                model[id] = -Int64(step)
            }
            #expect(index.count == model.count)
        }
        for id in Array(UInt64(0)...(nextID + 10)) + model.keys.filter({ $0 > nextID + 10 }) {
            #expect(index[id]?.offset == model[id], "id \(id)")
        }
        #expect(index.sorted.map(\.id) == model.keys.sorted())
        #expect(index.sorted.map(\.location.offset) == model.keys.sorted().map { model[$0]! })
    }

    @Test("the outcome index answers as nested dictionaries would: in-order and out-of-order numbers, replaced outcomes, several streams, shared reasons", arguments: [UInt64(7), 8, 9])
    func outcomeIndexMatchesDictionary(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var index = OutcomeIndex()
        var model: [UInt64: [UInt64: DeadLetterReason]] = [:]
        let reasons: [DeadLetterReason] = [.rejected("bad"), .rejected("worse"), .expired, .deadLettered("no acknowledgement after 5 attempts")]
        var next: [UInt64: UInt64] = [1: 1, 2: 1, 3: 1]
        for _ in 0..<20_000 {
            let stream = 1 + random.next() % 3
            let reason = reasons[Int(random.next() % UInt64(reasons.count))]
            let sequence: UInt64
            if random.next() % 5 == 0, let top = next[stream], top > 1 {
                sequence = 1 + random.next() % top  // out of order, or a number recorded before
            } else {
                sequence = next[stream]! + random.next() % 3
                next[stream] = sequence + 1
            }
            index.record(reason, stream: stream, sequence: sequence)
            model[stream, default: [:]][sequence] = reason
        }
        for stream in UInt64(0)...4 {
            #expect(index.all(stream: stream) == (model[stream] ?? [:]), "stream \(stream)")
            for sequence in UInt64(0)...(next[stream] ?? 3) {
                #expect(index.reason(stream: stream, sequence: sequence) == model[stream]?[sequence], "stream \(stream), \(sequence)")
            }
        }
    }
}
