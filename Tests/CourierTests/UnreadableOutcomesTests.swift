import Foundation
import Synchronization
import Testing
import TestSupport
import ZeroMQ
@testable import Courier

/// A receiver whose first OUTCOMES frame arrives damaged (its checksum fails), followed by an
/// ACK that covers the rejected number; asked again, it answers as a Courier receiver does:
/// its verdicts, then its WELCOME.
private final class GarblingReceiver: Sendable {
    private let stopped = Mutex(false)
    private let task = Mutex<Task<Void, any Error>?>(nil)
    let hellos = Mutex(0)

    init(at endpoint: String, rejecting rejected: UInt64, reason: String) {
        let running = Task { [self] in
            try await DedicatedThread.run(name: "garbling-receiver") { [self] in
                let context = try Context()
                let router = try Socket(.router, context: context)
                try router.bind(endpoint)
                let poller = try Poller()
                poller.register(router)
                let decoder = WireDecoder(maxPayloadSize: 1 << 20)
                var highest: UInt64 = 0
                var garbled = false
                while !stopped.withLock({ $0 }) {
                    _ = try poller.poll(timeout: .milliseconds(5))
                    while let message = try router.tryReceive() {
                        guard let frame = try? decoder.decode(message.frames[1]) else { continue }
                        let peer = message.frames[0]
                        let verdict = WireFrame.outcomes(.init(stream: 0, entries: [.init(sequence: rejected, code: .rejected, reason: reason)]))
                        switch frame {
                        case .hello(let hello):
                            hellos.withLock { $0 += 1 }
                            var frames: [[UInt8]] = []
                            if highest >= rejected, hello.firstUnacknowledged <= rejected {
                                frames.append(WireEncoder.encode(verdict.withStream(hello.stream)))
                            }
                            let mark = max(highest, hello.firstUnacknowledged - 1)
                            frames.append(WireEncoder.encode(.welcome(.init(stream: hello.stream, processedUpTo: mark, receivedUpTo: mark))))
                            for frame in frames { _ = try router.trySend(Message([peer, frame])) }
                        case .data(let batch):
                            highest = max(highest, batch.records.map(\.sequence).max() ?? 0)
                            guard highest >= rejected else { continue }
                            if !garbled {
                                garbled = true
                                var damaged = WireEncoder.encode(verdict.withStream(batch.stream))
                                damaged[damaged.count / 2] ^= 0xFF
                                _ = try router.trySend(Message([peer, damaged]))
                            }
                            let ack = WireFrame.ack(.init(stream: batch.stream, processedUpTo: highest, receivedUpTo: highest, processedRanges: []))
                            _ = try router.trySend(Message([peer, WireEncoder.encode(ack)]))
                        default: break
                        }
                    }
                }
            }
        }
        task.withLock { $0 = running }
    }

    func finish() async throws {
        stopped.withLock { $0 = true }
        try await task.withLock { $0 }?.value
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
        #expect(receiver.hellos.withLock { $0 } >= 2, "asked again after the unreadable frame")
        await sender.shutdown()
        try await receiver.finish()
    }
}
