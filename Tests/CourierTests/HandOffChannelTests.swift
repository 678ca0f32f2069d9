import Testing
@testable import Courier

@Suite("Hand-off channel")
struct HandOffChannelTests {
    @Test("elements come out in order, whether sent before or while the consumer waits; poll takes only what is kept")
    func order() async {
        let channel = HandOffChannel<Int>()
        for i in 1...3 { channel.send(i) }
        #expect(await channel.next() == 1)
        #expect(channel.poll() == 2)
        #expect(channel.poll() == 3)
        #expect(channel.poll() == nil)
        let consumer = Task { () -> [Int] in
            var got: [Int] = []
            while got.count < 5_000, let element = await channel.next() { got.append(element) }
            return got
        }
        for i in 4..<5_004 { channel.send(i) }
        #expect(await consumer.value == Array(4..<5_004))
    }

    @Test("a bounded channel keeps the newest elements; finish hands out what is kept, then nil, and drops later sends")
    func boundedAndFinished() async {
        let channel = HandOffChannel<Int>(keepingNewest: 3)
        for i in 1...10 { channel.send(i) }
        channel.finish()
        channel.send(11)
        var got: [Int] = []
        while let element = await channel.next() { got.append(element) }
        #expect(got == [8, 9, 10])
        #expect(await channel.next() == nil)
    }

    @Test("finish wakes a waiting consumer with nil")
    func finishWakesWaiter() async {
        let channel = HandOffChannel<Int>()
        let consumer = Task { await channel.next() }
        // The consumer may or may not be waiting yet: either way it ends with nil.
        channel.finish()
        #expect(await consumer.value == nil)
    }

    @Test("cancelling the waiting consumer returns nil and ends the channel, as with AsyncStream")
    func cancellationEnds() async throws {
        let channel = HandOffChannel<Int>()
        let consumer = Task { await channel.next() }
        consumer.cancel()
        #expect(await consumer.value == nil)
        channel.send(1)
        #expect(await channel.next() == nil)
        #expect(channel.poll() == nil)
    }
}
