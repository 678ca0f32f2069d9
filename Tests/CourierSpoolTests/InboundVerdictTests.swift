import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

@Suite("Inbound verdicts kept for the sender")
struct InboundVerdictTests {
    @Test("a verdict is durable with its mark, survives reopen and compaction, and leaves once the sender has heard it")
    func keptUntilHeard() async throws {
        let temp = TemporaryDirectory("inbound-verdicts")
        let path = temp.sub("data")
        let settings = configuration(.none) { $0.inbound.compactionThreshold = 4096 }
        let refused = InboundVerdict(code: 1, reason: "non, merci ✗")
        do {
            let directory = try await DataDirectory.open(path: path, configuration: settings)
            try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [1, 2, 3], verdicts: [2: refused])
            directory.close()
        }
        do {
            let directory = try await DataDirectory.open(path: path, configuration: settings)
            #expect(directory.inbound.verdicts(sender: "a", streamID: 1) == [2: refused])
            #expect(directory.inbound.state(sender: "a", streamID: 1)?.processedUpTo == 3)
            // Enough marks for several compactions: the verdict is rewritten each time.
            for sequence in 4...600 as ClosedRange<UInt64> {
                try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [sequence])
            }
            directory.close()
        }
        let journal = path.appending("inbound").appending("inbound.journal")
        #expect(try readFile(journal).count < 8192, "compacted")
        do {
            let directory = try await DataDirectory.open(path: path, configuration: settings)
            #expect(directory.inbound.verdicts(sender: "a", streamID: 1) == [2: refused])
            // The sender's HELLO said it finished everything below 3: the verdict is heard.
            directory.inbound.forgetVerdicts(sender: "a", streamID: 1, upTo: 2)
            #expect(directory.inbound.verdicts(sender: "a", streamID: 1).isEmpty)
            for sequence in 601...1200 as ClosedRange<UInt64> {
                try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [sequence])
            }
            directory.close()
        }
        let directory = try await DataDirectory.open(path: path, configuration: settings)
        defer { directory.close() }
        #expect(directory.inbound.verdicts(sender: "a", streamID: 1).isEmpty, "gone from the journal at its next compaction")
        #expect(directory.inbound.state(sender: "a", streamID: 1)?.processedUpTo == 1200)
    }

    @Test("a verdict record's body round-trips, and impossible layouts are refused")
    func encoding() throws {
        let key = InboundStreamKey(sender: "émetteur", streamID: 0xFEED)
        let verdict = InboundVerdict(code: 2, reason: "expired on arrival")
        let body = InboundVerdict.encodedBody(key, sequence: 42, verdict: verdict)
        let decoded = try #require(InboundVerdict.decode(body: body))
        #expect(decoded.key == key && decoded.sequence == 42 && decoded.verdict == verdict)
        #expect(InboundVerdict.decode(body: Array(body.dropLast())) == nil)
        #expect(InboundVerdict.decode(body: body + [0]) == nil)
        #expect(InboundVerdict.decode(body: []) == nil)
        var badName = body
        badName[1] = 0xFF
        #expect(InboundVerdict.decode(body: badName) == nil)
    }
}
