import Testing
@testable import Courier

@Suite("Reason interner")
struct ReasonInternerTests {
    private func storage(_ text: String) -> UnsafeRawPointer? {
        var text = text
        return text.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    }

    @Test("equal reasons from different frames share one storage; past the capacity, reasons pass through unchanged")
    func sharesStorage() {
        var interner = ReasonInterner()
        let reason = "payload matches --reject-matching ^P-[0-9]*[02468][.]"
        let first = interner.intern(String(decoding: Array(reason.utf8), as: UTF8.self))
        let second = interner.intern(String(decoding: Array(reason.utf8), as: UTF8.self))
        #expect(first == reason && second == reason)
        #expect(storage(first) == storage(second))
        let frame = WireFrame.outcomes(.init(stream: 1, entries: [
            .init(sequence: 1, code: .rejected, reason: String(decoding: Array(reason.utf8), as: UTF8.self))]))
        guard case .outcomes(let outcomes) = interner.intern(frame) else {
            Issue.record("not an outcomes frame")
            return
        }
        #expect(storage(outcomes.entries[0].reason) == storage(first))
        for index in 0..<ReasonInterner.capacity { _ = interner.intern("reason number \(index) of many, long enough for the heap") }
        let late = "a reason that arrives when the interner is full, also long"
        #expect(interner.intern(late) == late)
    }
}
