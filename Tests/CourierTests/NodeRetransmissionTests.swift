import Foundation
import Synchronization
import Testing
import ZeroMQ
@testable import Courier

@Suite("Retransmission", .timeLimit(.minutes(2)))
struct NodeRetransmissionTests {
    @Test("a consumer that holds messages through many retransmission timeouts gets no copies, and they are not dead-lettered")
    func slowConsumerGetsNoCopies() async throws {
        let directory = TemporaryDirectory("slow-consumer")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [endpoint])])
        settings.maxAttempts = 2
        settings.retransmission.initialTimeout = .milliseconds(50)
        settings.retransmission.minimumTimeout = .milliseconds(30)
        settings.retransmission.maximumTimeout = .milliseconds(100)
        let sender = try await Node.start(settings)
        let receipts = try await sender.send(batch: (1...20).map { Array("slow-\($0)".utf8) }, to: "r")

        // Take all twenty and sit on them for ten of the longest retransmission timeouts.
        let held = try await within(.seconds(20), "delivery") { await receive(20, from: receiver, handle: { _ in }) }
        try await Task.sleep(for: .seconds(1))
        let statistics = try #require(sender.statistics(for: "r"))
        #expect(statistics.retransmitted == 0, "the receiver had every message; none should have been sent again")
        #expect(statistics.deadLettered == 0)

        for message in held { message.acknowledge() }
        let outcomes = try await within(.seconds(20), "outcomes") { try await receipts.outcomes() }
        #expect(outcomes == Array(repeating: .processed, count: 20))
        #expect(held.allSatisfy { $0.attempt == 1 })
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a receiver acknowledges receipt of messages its application holds, without marking them processed")
    func receiptAcknowledged() async throws {
        let directory = TemporaryDirectory("receipt")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let held = Task { await receive(3, from: receiver, handle: { _ in }) }  // never acknowledged
        let ack = try await DedicatedThread.run(name: "raw-sender") { () throws -> WireFrame.Ack? in
            let raw = try RawSender(id: "s", connectingTo: endpoint)
            defer { raw.close() }
            try raw.send(WireEncoder.encode(.hello(.init(stream: 5, firstUnacknowledged: 1, nextSequence: 4))))
            var data = WireEncoder.data(stream: 5)
            for sequence in UInt64(1)...3 {
                data.appendRecord(sequence: sequence, attempt: 1, isTombstone: false, expiry: 0, payload: Array("held \(sequence)".utf8))
            }
            var receipt: WireFrame.Ack?
            _ = try raw.receive(for: .seconds(10)) { frame in
                switch frame {
                case .welcome: try raw.send(data.finish())
                case .ack(let ack) where ack.receivedUpTo == 3: receipt = ack
                default: break
                }
                return receipt != nil
            }
            return receipt
        }
        let received = try #require(ack, "no acknowledgement of receipt within 10 s")
        #expect(received.processedUpTo == 0 && received.processedRanges.isEmpty)
        #expect(try await within(.seconds(10), "hand-out") { await held.value }.map(\.sequence) == [1, 2, 3])
        await receiver.shutdown(timeout: .zero)
    }

    @Test("a retransmission timeout asks the receiver where it stands and resends only what it lacks")
    func timeoutResendsOnlyWhatIsMissing() async throws {
        let directory = TemporaryDirectory("probe")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let fake = SilentReceiver(at: endpoint) { $0.claim = 10 }
        defer { fake.stop() }
        let sender = try await Node.start(fastTimeouts(directory, endpoint))
        _ = try await sender.send(batch: (1...30).map { Array("m\($0)".utf8) }, to: "r")

        // The fake takes all thirty, never acknowledges, and answers the first timeout's
        // HELLO with "received up to 10": exactly 11…30 go again. The next timeout's WELCOME
        // says it has everything, and then nothing more goes.
        try await fake.waitUntil("11…30 resent, then a WELCOME for all") { state in
            state.hellosAfterData >= 2 && (UInt64(11)...30).allSatisfy { (state.attempts[$0]?.count ?? 0) >= 2 }
        }
        try await Task.sleep(for: .milliseconds(500))  // five of the longest timeouts: nothing more
        let attempts = fake.state.withLock { $0.attempts }
        #expect((UInt64(1)...10).allSatisfy { attempts[$0] == [1] }, "\(attempts.sorted { $0.key < $1.key })")
        #expect((UInt64(11)...30).allSatisfy { attempts[$0] == [1, 2] }, "\(attempts.sorted { $0.key < $1.key })")
        #expect(try #require(sender.statistics(for: "r")).retransmitted == 20)
        try await fake.finish()
        await sender.shutdown(timeout: .zero)
    }

    @Test("while a timeout's question is open nothing new goes, and a late second answer moves nothing back")
    func nothingNewWhileAsking() async throws {
        let directory = TemporaryDirectory("asking")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let fake = SilentReceiver(at: endpoint) { $0.welcomeDelay = .milliseconds(300) }
        defer { fake.stop() }
        let sender = try await Node.start(fastTimeouts(directory, endpoint))
        _ = try await sender.send(batch: (1...20).map { Array("m\($0)".utf8) }, to: "r")
        try await fake.waitUntil("a timeout's HELLO after the data") { $0.highest >= 20 && $0.hellosAfterData >= 1 }
        // Sent while the answer (received up to 20) is on its way: these go after it, once.
        // More timeouts ask again meanwhile; their answers arrive late and say 20 too.
        _ = try await sender.send(batch: (21...30).map { Array("m\($0)".utf8) }, to: "r")
        try await fake.waitUntil("21…30 arrive") { $0.highest >= 30 }
        try await Task.sleep(for: .milliseconds(800))  // the late answers, and five of the longest timeouts
        let attempts = fake.state.withLock { $0.attempts }
        #expect((UInt64(1)...30).allSatisfy { attempts[$0] == [1] }, "\(attempts.sorted { $0.key < $1.key })")
        #expect(try #require(sender.statistics(for: "r")).retransmitted == 0)
        try await fake.finish()
        await sender.shutdown(timeout: .zero)
    }

    @Test("an older receiver that answers many HELLOs with one WELCOME does not slow later questions")
    func coalescedAnswersDoNotSlowLaterQuestions() async throws {
        let directory = TemporaryDirectory("coalesced")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        // The first contact's answer takes 600 ms and answers every HELLO sent meanwhile
        // (about a dozen, one per 50 ms timeout) at once.
        let fake = SilentReceiver(at: endpoint) { $0.firstAnswerAfter = .milliseconds(600) }
        defer { fake.stop() }
        var settings = fastTimeouts(directory, endpoint)
        settings.retransmission.minimumTimeout = .milliseconds(50)
        settings.retransmission.maximumTimeout = .milliseconds(200)
        let sender = try await Node.start(settings)
        for batch in 0..<3 {
            let first = UInt64(batch * 10 + 1)
            let hellosBefore = fake.state.withLock { $0.hellosAfterData }
            _ = try await sender.send(batch: (first...first + 9).map { Array("m\($0)".utf8) }, to: "r")
            // The fake never acknowledges: a timeout asks, the WELCOME says it has all.
            try await fake.waitUntil("batch \(batch) asked about") { $0.highest >= first + 9 && $0.hellosAfterData > hellosBefore }
            try await Task.sleep(for: .milliseconds(600))  // three of the longest timeouts: no more questions
            let hellos = fake.state.withLock { $0.hellosAfterData } - hellosBefore
            // Two for the question; on a loaded machine, where this takes over a second, the
            // probe (everything received, nothing processed for max(1 s, 4 RTO)) adds one.
            #expect(hellos <= 3, "batch \(batch): \(hellos) HELLOs for one question")
        }
        #expect(fake.state.withLock { $0.attempts.values.allSatisfy { $0 == [1] } })
        try await fake.finish()
        await sender.shutdown(timeout: .zero)
    }

    @Test("a receiver answers every HELLO, also those that came while it made the stream durable")
    func everyHelloAnswered() async throws {
        let directory = TemporaryDirectory("every-hello")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let welcomes = try await DedicatedThread.run(name: "hello-sender") {
            let raw = try RawSender(id: "s", connectingTo: endpoint)
            defer { raw.close() }
            // Five at once: the first starts the stream's durable record, the rest arrive
            // before it is done.
            let hello = WireEncoder.encode(.hello(.init(stream: 77, firstUnacknowledged: 1, nextSequence: 1)))
            for _ in 0..<5 { try raw.send(hello) }
            var count = 0
            func countWelcomes(_ frame: WireFrame) -> Bool {
                if case .welcome = frame { count += 1 }
                return count == 5
            }
            // Every answer, and then half a second in which no more come.
            _ = try raw.receive(for: .seconds(10), countWelcomes)
            _ = try raw.receive(for: .milliseconds(500)) { _ = countWelcomes($0); return false }
            return count
        }
        #expect(welcomes == 5)
        await receiver.shutdown()
    }

    private func fastTimeouts(_ directory: TemporaryDirectory, _ endpoint: String) -> NodeConfiguration {
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [endpoint])])
        settings.retransmission.initialTimeout = .milliseconds(50)
        settings.retransmission.minimumTimeout = .milliseconds(20)
        settings.retransmission.maximumTimeout = .milliseconds(100)
        return settings
    }
}
