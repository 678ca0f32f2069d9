import CourierSpool
import Foundation
import SystemPackage
import Testing
import TestSupport
@testable import Courier

@Suite("Outcome reports after a restart", .timeLimit(.minutes(2)))
struct NodeOutcomeReportsTests {
    /// Sends `count` messages from a first run of sender "s" to a receiver that rejects the
    /// numbers in `rejected`, waits until all are settled, and stops the sender.
    private func firstRun(in directory: TemporaryDirectory, receiver: Node, endpoint: String, count: Int, rejected: Set<UInt64>) async throws -> [MessageID] {
        let sender = try await startSender(in: directory, to: endpoint)
        let consumer = Task {
            await receive(count, from: receiver) { message in
                if rejected.contains(message.sequence) { message.reject(reason: "no \(message.sequence)") } else { message.acknowledge() }
            }
        }
        let ids = try await sender.send(batch: (1...count).map { Array("m\($0)".utf8) }, to: "r").map(\.id)
        _ = try await within(.seconds(20), "delivery") { await consumer.value }
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "r") }
        await sender.shutdown()
        return ids
    }

    /// The first `count` reports of an iteration of `node.outcomes(for: "r")`.
    private func reports(_ node: Node, _ count: Int, extent: OutcomeReports.Extent = .continuing) async throws -> [OutcomeReport] {
        try await within(.seconds(20), "\(count) reports") {
            var got: [OutcomeReport] = []
            guard count > 0 else { return got }
            for try await report in node.outcomes(for: "r", extent: extent) {
                got.append(report)
                if got.count == count { break }
            }
            return got
        }
    }

    private func cursorPath(_ node: Node) throws -> String {
        try #require(node.core.log(for: "r")).directory.appending(OutcomeCursor.fileName).string
    }

    @Test("a restarted sender replays the outcome of every earlier message, in order, with its real outcome")
    func replayAfterRestart() async throws {
        let directory = TemporaryDirectory("reports-replay")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let ids = try await firstRun(in: directory, receiver: receiver, endpoint: endpoint, count: 5, rejected: [3])

        let sender = try await startSender(in: directory, to: endpoint)
        let expected = ids.map { OutcomeReport(id: $0, outcome: $0.sequence == 3 ? .rejected(reason: "no 3") : .processed) }
        #expect(try await reports(sender, 5) == expected)
        // Without an acknowledgement, a second iteration replays them again; .sentSoFar ends.
        let all = try await within(.seconds(20), "replay to the end") {
            var got: [OutcomeReport] = []
            for try await report in sender.outcomes(for: "r", extent: .sentSoFar) { got.append(report) }
            return got
        }
        #expect(all == expected)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("acknowledged through 3, restarted: the replay starts at 4, and new sends are reported after the old ones")
    func acknowledgeThenRestart() async throws {
        let directory = TemporaryDirectory("reports-ack")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let ids = try await firstRun(in: directory, receiver: receiver, endpoint: endpoint, count: 5, rejected: [3])

        let second = try await startSender(in: directory, to: endpoint)
        let replayed = try await reports(second, 3)
        #expect(replayed.map(\.id) == Array(ids[0..<3]))
        try await second.acknowledgeOutcomes(through: replayed[2].id)
        try await second.acknowledgeOutcomes(through: ids[0])    // below the cursor: changes nothing
        #expect(try await reports(second, 1).first?.id == ids[3], "an iteration in the same run starts after the cursor too")
        await second.shutdown()

        let third = try await startSender(in: directory, to: endpoint)
        // An iteration that starts before the new sends waits for them after the old ones.
        let iteration = Task { try await reports(third, 4) }
        let consumer = Task {
            await receive(2, from: receiver) { message in
                if message.sequence == 7 { message.reject(reason: "no 7") } else { message.acknowledge() }
            }
        }
        let fresh = try await third.send(batch: [Array("m6".utf8), Array("m7".utf8)], to: "r").map(\.id)
        _ = try await within(.seconds(20), "delivery") { await consumer.value }
        let got = try await iteration.value
        #expect(got.map(\.id) == [ids[3], ids[4]] + fresh)
        #expect(got.map(\.outcome) == [.processed, .processed, .processed, .rejected(reason: "no 7")])
        #expect(fresh.map(\.sequence) == [6, 7])

        // Refused: another stream, a number never sent, an unknown peer.
        let stream = ids[0].stream
        do { try await third.acknowledgeOutcomes(through: MessageID(peer: "r", stream: stream, sequence: 8)) } catch {
            #expect(error.code == .unknownMessage)
        }
        do { try await third.acknowledgeOutcomes(through: MessageID(peer: "r", stream: stream &+ 1, sequence: 1)) } catch {
            #expect(error.code == .unknownMessage)
        }
        do { try await third.acknowledgeOutcomes(through: MessageID(peer: "x", stream: stream, sequence: 1)) } catch {
            #expect(error.code == .unknownPeer)
        }
        try await third.acknowledgeOutcomes(through: fresh[1])
        await third.shutdown()

        let fourth = try await startSender(in: directory, to: endpoint)
        let none = try await within(.seconds(10), "an empty replay") {
            var got: [OutcomeReport] = []
            for try await report in fourth.outcomes(for: "r", extent: .sentSoFar) { got.append(report) }
            return got
        }
        #expect(none.isEmpty, "everything was acknowledged: \(none)")
        await fourth.shutdown()
        await receiver.shutdown()
    }

    @Test("a damaged cursor file is reported and counts as none: the replay starts from the first message")
    func damagedCursor() async throws {
        let directory = TemporaryDirectory("reports-damaged")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let ids = try await firstRun(in: directory, receiver: receiver, endpoint: endpoint, count: 5, rejected: [3])

        let second = try await startSender(in: directory, to: endpoint)
        try await second.acknowledgeOutcomes(through: ids[2])
        let path = try cursorPath(second)
        await second.shutdown()
        var bytes = try #require(FileManager.default.contents(atPath: path))
        #expect(bytes.count == 48)
        bytes[26] ^= 0x01    // in the cursor's value: only the checksum can tell
        try bytes.write(to: URL(fileURLWithPath: path))

        let third = try await startSender(in: directory, to: endpoint)
        let events = Task { () -> String? in
            for await event in third.events {
                if case .corruptionFound(let description) = event { return description }
            }
            return nil
        }
        let replayed = try await reports(third, 5)
        #expect(replayed.map(\.id) == ids, "at least once: from the start")
        #expect(replayed[2].outcome == .rejected(reason: "no 3"))
        let reported = try await within(.seconds(10), "the corruption event") { await events.value }
        #expect(reported?.contains("outcomes.cursor") == true, "event: \(String(describing: reported))")
        #expect(!FileManager.default.fileExists(atPath: path), "the damaged file is set aside")
        let quarantine = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("quarantine").path
        #expect(try FileManager.default.contentsOfDirectory(atPath: quarantine).contains("outcomes.cursor.at-0.quarantined"))
        // A new acknowledgement writes a good cursor again.
        try await third.acknowledgeOutcomes(through: ids[3])
        await third.shutdown()
        let fourth = try await startSender(in: directory, to: endpoint)
        #expect(try await reports(fourth, 1).map(\.id) == [ids[4]])
        await fourth.shutdown()
        await receiver.shutdown()
    }

    @Test("a cursor of another stream (the spool was wiped) counts for nothing")
    func cursorOfAnotherStream() async throws {
        let directory = TemporaryDirectory("reports-other-stream")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let ids = try await firstRun(in: directory, receiver: receiver, endpoint: endpoint, count: 3, rejected: [])
        let peerDirectory: FilePath = try {
            let spool = try DataDirectory(path: FilePath(directory.sub("s")))
            defer { spool.close() }
            return try spool.outboundLog(for: "r").directory
        }()
        try OutcomeCursor.write(OutcomeCursor(streamID: ids[0].stream &+ 1, consumedUpTo: 2), in: peerDirectory)
        let sender = try await startSender(in: directory, to: endpoint)
        #expect(try await reports(sender, 3).map(\.id) == ids)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("reports wait for numbers not assigned yet, and end with shutDown when the node stops")
    func waitsAndStops() async throws {
        let directory = TemporaryDirectory("reports-stop")
        defer { directory.cleanup() }
        let sender = try await startSender(in: directory, to: freeLoopbackEndpoint())
        // Nothing sent, nobody listening: the iteration waits for number 1.
        let iteration = Task { () -> CourierError? in
            do throws(CourierError) {
                for try await report in sender.outcomes(for: "r") { Issue.record("reported \(report), never sent") }
                return nil
            } catch {
                return error
            }
        }
        let id = try await sender.send(Array("never delivered".utf8), to: "r").id
        #expect(id.sequence == 1)
        try await Task.sleep(for: .milliseconds(200))
        await sender.shutdown(timeout: .zero)
        let error = try await within(.seconds(10), "the iteration to end") { await iteration.value }
        #expect(error?.code == .shutDown)
        // Once stopped: an iteration fails at once, and so does an acknowledgement.
        do throws(CourierError) {
            for try await report in sender.outcomes(for: "r") { Issue.record("reported \(report) after shutdown") }
            Issue.record("the iteration ended without an error")
        } catch {
            #expect(error.code == .shutDown)
        }
        do { try await sender.acknowledgeOutcomes(through: id) } catch { #expect(error.code == .unknownMessage || error.code == .shutDown) }
        do throws(CourierError) {
            for try await report in sender.outcomes(for: "nobody") { Issue.record("reported \(report)") }
        } catch {
            #expect(error.code == .unknownPeer)
        }
    }

    @Test("the cursor file: 48 bytes, checksummed; damage of any byte is found")
    func cursorFormat() throws {
        let cursor = OutcomeCursor(streamID: 0x1234_5678_9ABC_DEF0, consumedUpTo: 42, writtenAt: 1_700_000_000_000_000_000)
        let bytes = cursor.encoded()
        #expect(bytes.count == 48)
        #expect(Array(bytes[0..<8]) == Array("CSPLOCUR".utf8))
        #expect(try OutcomeCursor.decode(bytes).get() == cursor)
        for index in bytes.indices {
            var damaged = bytes
            damaged[index] ^= 0x40
            #expect((try? OutcomeCursor.decode(damaged).get()) == nil, "byte \(index)")
        }
        #expect((try? OutcomeCursor.decode(Array(bytes.dropLast())).get()) == nil)
        #expect((try? OutcomeCursor.decode(bytes + [0]).get()) == nil)
    }
}
