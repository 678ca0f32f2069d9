import CourierSpool
import Foundation
import MetricsTestKit
import Synchronization
import Testing
import TestSupport
import ZeroMQ
@testable import Courier

@Suite("Hostile and silent peers", .timeLimit(.minutes(2)))
struct NodeHostileInputTests {
    @Test("a receiver that never acknowledges: retransmitted with rising attempts, then dead-lettered")
    func attemptsExhausted() async throws {
        let directory = TemporaryDirectory("attempts")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        // Takes data, never acknowledges, and each WELCOME says nothing arrived.
        let fake = SilentReceiver(at: endpoint) { $0.claim = 0; $0.claimForever = true }
        defer { fake.stop() }
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [endpoint])])
        settings.maxAttempts = 3
        settings.retransmission.initialTimeout = .milliseconds(50)
        settings.retransmission.minimumTimeout = .milliseconds(20)
        settings.retransmission.maximumTimeout = .milliseconds(200)
        let sender = try await Node.start(settings)
        let receipt = try await sender.send(Array("into the void".utf8), to: "r")
        let outcome = try await within(.seconds(20), "dead-lettering") { try await receipt.outcome() }
        #expect(outcome == .deadLettered(reason: "no acknowledgement after 3 attempts"))
        #expect(fake.state.withLock { $0.attempts[1] ?? [] }.prefix(3) == [1, 2, 3])
        #expect(try #require(sender.statistics(for: "r")).deadLettered == 1)
        try await fake.finish()
        await sender.shutdown(timeout: .zero)
    }

    @Test("malformed, mutated and oversized frames are dropped and reported; the real stream is untouched")
    func hostileFrames() async throws {
        let directory = TemporaryDirectory("hostile")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        var receiverSettings = configuration(id: "r", directory: directory.sub("r"), listen: [endpoint])
        receiverSettings.maxMessageSize = 4096
        let receiver = try await Node.start(receiverSettings)
        let events = Task {
            var dropped = 0
            for await event in receiver.events {
                if case .hostileFrameDropped = event { dropped += 1 }
                if dropped >= 8 { break }
            }
            return dropped
        }
        let sender = try await startSender(in: directory, to: endpoint)
        let collector = Task { await receive(200, from: receiver) }
        _ = try await sender.send(batch: (1...100).map { Array("real \($0)".utf8) }, to: "r")

        try await DedicatedThread.run(name: "mallory") {
            let context = try Context()
            let mallory = try Socket(.dealer, context: context)
            try mallory.set(.routingID, Array("mallory".utf8))
            try mallory.connect(endpoint)
            var random = SeededGenerator(seed: 7)
            let hello = WireEncoder.encode(.hello(.init(stream: 99, firstUnacknowledged: 1, nextSequence: 5)))
            var data = WireEncoder.data(stream: 99)
            data.appendRecord(sequence: 1, attempt: 1, isTombstone: false, expiry: 0, payload: Array("forged".utf8))
            let validData = data.finish()
            var frames: [[[UInt8]]] = [
                [(0..<64).map { _ in UInt8(truncatingIfNeeded: random.next()) }],     // noise
                [Array(hello.prefix(10))],                                              // truncated
                [[0x43, 0x52, 9, 1] + Array(hello.dropFirst(4))],                      // unknown version
                [hello, hello],                                                         // two parts
                [seal(frameBody(kind: 3, fields: [u64(7), u16(1), record(seq: 1, statedLength: 1 << 20)]))], // lying length
            ]
            var flipped = validData
            flipped[20] ^= 0x10
            frames.append([flipped])                                                    // bit flip in data
            frames.append([Array(validData.dropLast(1))])                              // truncated data
            frames.append([seal(frameBody(kind: 4, fields: [u64(1), u64(0), u64(0), u16(0)]))]) // an ack to a receiver
            frames.append([validData])                                                  // data without a hello (ignored)
            frames.append([[UInt8](repeating: 0x41, count: 1 << 20)])                  // oversized: connection dropped
            for parts in frames { try mallory.send(Message(parts)) }
            // Let libzmq deliver what is queued before the socket goes.
            mallory.close(linger: .upTo(.seconds(5)))
        }
        let dropped = try await within(.seconds(20), "hostile frames reported") { await events.value }
        #expect(dropped >= 8)
        _ = try await sender.send(batch: (101...200).map { Array("real \($0)".utf8) }, to: "r")
        let received = try await within(.seconds(30), "real stream") { await collector.value }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...200).map { "real \($0)" })
        #expect(received.allSatisfy { $0.sender == "s" })
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("sequence numbers at and beyond the protocol's limit: refused above 2^62, served at it, never a trap")
    func boundarySequenceNumbers() async throws {
        let directory = TemporaryDirectory("boundary")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let sender = try await startSender(in: directory, to: endpoint)
        let refused = Task {
            var count = 0
            for await event in receiver.events {
                if case .hostileFrameDropped = event { count += 1 }
                if count >= 3 { break }
            }
            return count
        }
        // mallory's stream 7 starts at the very top of the range; an honest sender's stream
        // goes on beside it. Each DATA comes after a HELLO that put the stream's marks there.
        let top = Wire.maxSequence
        let collector = Task { await receive(51, from: receiver) }
        _ = try await sender.send(batch: (1...25).map { Array("real \($0)".utf8) }, to: "r")
        let welcomes = try await DedicatedThread.run(name: "mallory") {
            let context = try Context()
            let mallory = try Socket(.dealer, context: context)
            try mallory.set(.routingID, Array("mallory".utf8))
            try mallory.connect(endpoint)
            func data(_ sequence: UInt64) -> [UInt8] {
                var encoder = WireEncoder.data(stream: 7)
                encoder.appendRecord(sequence: sequence, attempt: .max, isTombstone: false, expiry: 0, payload: Array("edge".utf8))
                return encoder.finish()
            }
            let hostile: [[UInt8]] = [
                // The frame that trapped the consumer: a HELLO near 2^64, then DATA.
                seal(frameBody(kind: 1, fields: [u64(7), u64(.max - 1), u64(.max)])),
                seal(frameBody(kind: 1, fields: [u64(7), u64(1 << 63), u64(1 << 63)])),
                seal(frameBody(kind: 3, fields: [u64(7), u16(1), record(seq: .max)])),
            ]
            for frame in hostile { try mallory.send(Message([frame])) }
            // Legal at the edge: the stream starts at 2^62; its first number is delivered.
            try mallory.send(Message([WireEncoder.encode(.hello(.init(stream: 7, firstUnacknowledged: top, nextSequence: top)))]))
            var answers: [WireFrame] = []
            let decoder = WireDecoder(maxPayloadSize: 1 << 20)
            let poller = try Poller()
            poller.register(mallory)
            let end = ContinuousClock.now + .seconds(10)
            while answers.isEmpty, ContinuousClock.now < end {
                _ = try poller.poll(timeout: .milliseconds(50))
                while let message = try mallory.tryReceive() { answers.append(try decoder.decode(message.frames[0])) }
            }
            try mallory.send(Message([data(top)]))
            mallory.close(linger: .upTo(.seconds(5)))
            return answers
        }
        #expect(welcomes.first == .welcome(.init(stream: 7, processedUpTo: top - 1, receivedUpTo: top - 1)))
        #expect(try await within(.seconds(20), "three refusals") { await refused.value } == 3)
        _ = try await sender.send(batch: (26...50).map { Array("real \($0)".utf8) }, to: "r")
        let received = try await within(.seconds(30), "all messages") { await collector.value }
        let real = received.filter { $0.sender == "s" }
        #expect(real.map { String(decoding: $0.payload, as: UTF8.self) } == (1...50).map { "real \($0)" })
        let edge = received.filter { $0.sender == "mallory" }
        #expect(edge.map(\.sequence) == [top])
        #expect(edge.first?.attempt == Int(UInt32.max))
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("an in-flight window above 2^20 is refused at start")
    func windowLimit() async throws {
        let directory = TemporaryDirectory("window")
        defer { directory.cleanup() }
        var settings = configuration(id: "r", directory: directory.sub("r"))
        settings.inFlightWindow = Wire.maxWindow + 1
        let error = await #expect(throws: CourierError.self) { try await Node.start(settings) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test("a peer that opens streams forever: each sender keeps at most maxStreamsPerSender, the node at most maxInboundStreams")
    func streamFlood() async throws {
        _ = testMetrics  // bootstrapped before the nodes make their counters
        let directory = TemporaryDirectory("streams")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        var settings = configuration(id: "r", directory: directory.sub("r"), listen: [endpoint])
        settings.maxStreamsPerSender = 3
        settings.maxInboundStreams = 20
        let receiver = try await Node.start(settings)
        let sender = try await startSender(in: directory, to: endpoint)
        let collector = Task { await receive(100, from: receiver) }
        _ = try await sender.send(batch: (1...50).map { Array("real \($0)".utf8) }, to: "r")
        try await within(.seconds(20), "the real sender's stream is up") {
            while receiver.core.directory.inbound.streams(of: "s").isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        }
        // Counted through the metrics: the event stream keeps only the newest 1,024 events,
        // and a burst of a thousand retirements may outrun a test's reading of it.
        let retiredCounter = try testMetrics.expectCounter("courier_inbound_streams_retired_total")
        let refusedCounter: @Sendable () -> Int64 = { (try? testMetrics.expectCounter("courier_frames_refused_total", [("reason", "stream_limit")]).totalValue) ?? 0 }
        let (retiredBefore, refusedBefore) = (retiredCounter.totalValue, refusedCounter())
        let done: @Sendable () -> Bool = {
            retiredCounter.totalValue - retiredBefore >= 997 && refusedCounter() - refusedBefore >= 30
        }
        try await DedicatedThread.run(name: "mallory") {
            let context = try Context()
            // One id, a thousand streams; then 46 more ids with one stream each.
            let mallory = try Socket(.dealer, context: context)
            try mallory.set(.routingID, Array("mallory".utf8))
            try mallory.set(.sendHighWaterMark, 2000)
            try mallory.connect(endpoint)
            for stream in 1...1000 as ClosedRange<UInt64> {
                try mallory.send(Message([WireEncoder.encode(.hello(.init(stream: stream, firstUnacknowledged: 1, nextSequence: 1)))]))
            }
            var others: [Socket] = []
            for id in 1...46 {
                let other = try Socket(.dealer, context: context)
                try other.set(.routingID, Array("mallory-\(id)".utf8))
                try other.connect(endpoint)
                try other.send(Message([WireEncoder.encode(.hello(.init(stream: 1, firstUnacknowledged: 1, nextSequence: 1)))]))
                others.append(other)
            }
            // The sockets stay open until everything arrived (a linger that runs out on a
            // loaded machine would drop HELLOs not yet sent): 30 s at most.
            let end = ContinuousClock.now + .seconds(30)
            while !done(), ContinuousClock.now < end { Thread.sleep(forTimeInterval: 0.01) }
            mallory.close(linger: .discard)
            for other in others { other.close(linger: .discard) }
        }
        // 1 real stream + 3 of mallory's + 16 others fill the 20; 30 others are refused.
        do {
            try await within(.seconds(30), "997 retirements and 30 refusals") {
                while retiredCounter.totalValue - retiredBefore < 997 || refusedCounter() - refusedBefore < 30 {
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
        } catch {
            let streams = receiver.core.directory.inbound.streams(of: "mallory").count
            Issue.record("retired \(retiredCounter.totalValue - retiredBefore), refused \(refusedCounter() - refusedBefore), mallory streams in the store \(streams)")
            throw error
        }
        #expect(retiredCounter.totalValue - retiredBefore == 997)
        #expect(refusedCounter() - refusedBefore == 30)
        try await within(.seconds(10), "the store keeps at most 3 of mallory's streams") {
            while receiver.core.directory.inbound.streams(of: "mallory").count > 3 { try await Task.sleep(for: .milliseconds(10)) }
        }
        _ = try await sender.send(batch: (51...100).map { Array("real \($0)".utf8) }, to: "r")
        let received = try await within(.seconds(30), "the real stream") { await collector.value }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...100).map { "real \($0)" })
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a frame of a version the receiver does not speak is answered with VERSIONS, once a second; a sender told so reports it")
    func versionMismatch() async throws {
        let directory = TemporaryDirectory("versions")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let answers = try await DedicatedThread.run(name: "future-sender") {
            let context = try Context()
            let socket = try Socket(.dealer, context: context)
            try socket.set(.routingID, Array("future".utf8))
            try socket.connect(endpoint)
            let future = seal(frameBody(version: 3, kind: 1, fields: [u64(1), u64(1), u64(1)]))
            for _ in 0..<5 { try socket.send(Message([future])) }
            let poller = try Poller()
            poller.register(socket)
            let decoder = WireDecoder(maxPayloadSize: 1 << 20)
            var answers: [WireFrame] = []
            let end = ContinuousClock.now + .milliseconds(800)
            while ContinuousClock.now < end {
                _ = try poller.poll(timeout: .milliseconds(50))
                while let message = try socket.tryReceive() { answers.append(try decoder.decode(message.frames[0])) }
            }
            socket.close()
            return answers
        }
        #expect(answers == [.versions(.init(supported: [1, 2]))])  // five frames, one answer within the second
        await receiver.shutdown()

        // A receiver from the future: answers every frame with VERSIONS [3, 4].
        let futureEndpoint = freeLoopbackEndpoint()
        let stop = Locked(false)
        let fake = Task {
            try await DedicatedThread.run(name: "future-receiver") {
                let context = try Context()
                let router = try Socket(.router, context: context)
                try router.bind(futureEndpoint)
                let poller = try Poller()
                poller.register(router)
                while !stop.withLock({ $0 }) {
                    _ = try poller.poll(timeout: .milliseconds(20))
                    while let message = try router.tryReceive() {
                        _ = try router.trySend([message.frames[0], WireEncoder.encode(.versions(.init(supported: [3, 4])))])
                    }
                }
                router.close()
            }
        }
        let settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [futureEndpoint])])
        let sender = try await Node.start(settings)
        let reported = try await within(.seconds(20), "unsupportedProtocol event") {
            for await event in sender.events {
                if case .unsupportedProtocol(let peer, let versions) = event { return (peer, versions) }
            }
            return ("", [])
        }
        #expect(reported.0 == "r")
        #expect(reported.1 == [3, 4])
        await sender.shutdown(timeout: .zero)
        stop.withLock { $0 = true }
        try await fake.value
    }
}
