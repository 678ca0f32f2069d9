import Foundation
import Synchronization
import Testing
import TestSupport
import ZeroMQ
@testable import Courier

/// A receiver whose first OUTCOMES frame arrives damaged (its checksum fails), followed by an
/// ACK that covers the rejected number; asked again, it answers as a Courier receiver does:
/// its verdicts, then its WELCOME.
private typealias GarblingReceiver = FakeRouter<GarblingReceiverState>

private struct GarblingReceiverState {
    var highest: UInt64 = 0
    var garbled = false
    var hellos = 0
}

private extension FakeRouter where State == GarblingReceiverState {
    convenience init(at endpoint: String, rejecting rejected: UInt64, reason: String) {
        self.init(at: endpoint, name: "garbling-receiver", state: State()) { frame, state in
            let verdict = WireFrame.outcomes(.init(stream: 0, entries: [.init(sequence: rejected, code: .rejected, reason: reason)]))
            switch frame {
            case .hello(let hello):
                state.hellos += 1
                var replies: [Reply] = []
                if state.highest >= rejected, hello.firstUnacknowledged <= rejected {
                    replies.append(Reply(verdict.withStream(hello.stream)))
                }
                let mark = max(state.highest, hello.firstUnacknowledged - 1)
                replies.append(Reply(.welcome(.init(stream: hello.stream, processedUpTo: mark, receivedUpTo: mark))))
                return replies
            case .data(let batch):
                state.highest = max(state.highest, batch.records.map(\.sequence).max() ?? 0)
                guard state.highest >= rejected else { return [] }
                var replies: [Reply] = []
                if !state.garbled {
                    state.garbled = true
                    var damaged = WireEncoder.encode(verdict.withStream(batch.stream))
                    damaged[damaged.count / 2] ^= 0xFF
                    replies.append(Reply(bytes: damaged))
                }
                let highest = state.highest
                replies.append(Reply(.ack(.init(stream: batch.stream, processedUpTo: highest, receivedUpTo: highest, processedRanges: []))))
                return replies
            default:
                return []
            }
        }
    }
}

private extension WireFrame {
    func withStream(_ stream: UInt64) -> WireFrame {
        guard case .outcomes(let outcomes) = self else { return self }
        return .outcomes(.init(stream: stream, entries: outcomes.entries))
    }
}

@Suite("A receiver whose verdicts arrive unreadable", .timeLimit(.minutes(1)))
struct UnreadableOutcomesTests {
    @Test("an unreadable frame, then an ACK covering a rejection: the sender asks again and reports the rejection, never processed")
    func unreadableThenAck() async throws {
        let directory = TemporaryDirectory("unreadable-outcomes")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = GarblingReceiver(at: endpoint, rejecting: 2, reason: "illisible puis relu")
        let sender = try await startSender(in: directory, to: endpoint)
        let receipts = try await sender.send(batch: ["a", "b", "c"].map { Array($0.utf8) }, to: "r")
        let outcomes = try await within(.seconds(20), "outcomes") { try await receipts.outcomes() }
        #expect(outcomes == [.processed, .rejected(reason: "illisible puis relu"), .processed])
        #expect(receiver.state.withLock { $0.hellos } >= 2, "asked again after the unreadable frame")
        await sender.shutdown()
        try await receiver.finish()
    }
}
