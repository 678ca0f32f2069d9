import Foundation
import Testing
import TestSupport

/// courier-producer and courier-consumer as real processes over 127.0.0.1 (SPEC §5).
@Suite("Example programs as processes", .serialized, .timeLimit(.minutes(3)))
struct ExampleProgramTests {
    @Test("a producer's messages reach the consumer once, in order, without gaps")
    func basicDelivery() async throws {
        let work = Workspace("basic")
        let port = freeLoopbackPort()
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)"],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        let producer = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)",
                                                      "--count", "300", "--size", "64", "--wait"],
                                 stdout: work.file("p.out"), stderr: work.file("p.err"))
        let producerExit = try await producer.exitCode(within: .seconds(60))
        #expect(producerExit == 0, "producer: \(work.read("p.err"))")
        #expect(work.read("p.err").contains("300 processed"), "summary: \(work.read("p.err"))")
        consumer.signal(SIGTERM)
        #expect(try await consumer.exitCode(within: .seconds(15)) == 0, "consumer: \(work.read("c.err"))")

        let delivered = try parseDelivered(work.read("c.out"))
        #expect(delivered.map(\.payload) == (1...300).map { "P-\($0)".padding(toLength: 64, withPad: ".", startingAt: 0) })
        #expect(delivered.map(\.seq) == Array(1...300))
        #expect(delivered.allSatisfy { $0.from == "P" && !$0.redelivered && $0.attempt >= 1 && !$0.rejected })
        #expect(Set(delivered.map(\.stream)).count == 1)
        if producerExit == 0 { work.remove() }
    }

    @Test("--exit-after N: the consumer exits 0 after N messages")
    func exitAfter() async throws {
        let work = Workspace("exit-after")
        let port = freeLoopbackPort()
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)",
                                                      "--exit-after", "5"],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        // --wait keeps the producer running (and sending) while the consumer takes its five.
        let producer = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)",
                                                      "--count", "8", "--wait"],
                                 stdout: work.file("p.out"), stderr: work.file("p.err"))
        #expect(try await consumer.exitCode(within: .seconds(30)) == 0, "consumer: \(work.read("c.err"))")
        try await producer.kill9()
        let delivered = try parseDelivered(work.read("c.out"))
        #expect(delivered.map(\.seq) == Array(1...5))
        work.remove()
    }

    @Test("the sender learns the outcome of messages a consumer acknowledged just before --exit-after ended it")
    func exitAfterAcknowledgementsReachTheSender() async throws {
        let work = Workspace("exit-after-acks")
        let port = freeLoopbackPort()
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)",
                                                      "--exit-after", "10"],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        let producer = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)",
                                                      "--count", "10", "--size", "10", "--wait"],
                                 stdout: work.file("p.out"), stderr: work.file("p.err"))
        #expect(try await consumer.exitCode(within: .seconds(30)) == 0)
        let code = try await producer.exitCode(within: .seconds(10))
        #expect(code == 0, "producer: \(work.read("p.err"))")
        producer.signal(SIGKILL)
        _ = try? await producer.exitCode(within: .seconds(10))
        work.remove()
    }

    @Test("--reject-matching: the message is printed as rejected and --wait fails with a summary")
    func rejection() async throws {
        let work = Workspace("reject")
        let port = freeLoopbackPort()
        let input = work.create("input", contents: "good-1\nbad-2\ngood-3\n")
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)",
                                                      "--reject-matching", "^bad-"],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        let producer = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)", "--wait"],
                                 stdin: input, stdout: work.file("p.out"), stderr: work.file("p.err"))
        let code = try await producer.exitCode(within: .seconds(60))
        #expect(code == 1)
        let summary = work.read("p.err")
        #expect(summary.contains("2 processed") && summary.contains("1 rejected"), "summary: \(summary)")
        consumer.signal(SIGTERM)
        #expect(try await consumer.exitCode(within: .seconds(15)) == 0)
        let delivered = try parseDelivered(work.read("c.out"))
        #expect(delivered.map(\.payload) == ["good-1", "bad-2", "good-3"])
        #expect(delivered.map(\.rejected) == [false, true, false])
        work.remove()
    }

    @Test("a second process on the same data directory fails at once, naming the holder")
    func lockedDataDirectory() async throws {
        let work = Workspace("lock")
        let port = freeLoopbackPort()
        let holder = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)"],
                               stdout: work.file("c.out"), stderr: work.file("c.err"))
        try await poll(within: .seconds(15), "the consumer to listen on \(port)") { isListening(port) }
        let started = ContinuousClock.now
        let second = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())"],
                               stdout: work.file("c2.out"), stderr: work.file("c2.err"))
        #expect(try await second.exitCode(within: .seconds(10)) == 1)
        #expect(ContinuousClock.now - started < .seconds(5))
        let message = work.read("c2.err")
        #expect(message.contains("pid \(holder.pid)"), "stderr: \(message)")
        #expect(message.split(separator: "\n").count == 1, "stderr: \(message)")
        let producer = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("c"), "--peer", "C=tcp://127.0.0.1:\(port)"],
                                 stdout: work.file("p.out"), stderr: work.file("p.err"))
        #expect(try await producer.exitCode(within: .seconds(10)) == 1)
        #expect(work.read("p.err").contains("pid \(holder.pid)"))
        holder.signal(SIGTERM)
        #expect(try await holder.exitCode(within: .seconds(15)) == 0)
        work.remove()
    }

    @Test("bad flags and bad endpoints: one line on standard error, exit code 2", arguments: [
        ["courier-consumer", "--id", "C", "--data-dir", "/tmp/x", "--listen", "tcp://nonsense:xyz"],
        ["courier-consumer", "--id", "C", "--data-dir", "/tmp/x", "--listen", "udp://127.0.0.1:1"],
        ["courier-consumer", "--no-such-flag"],
        ["courier-producer", "--id", "P", "--data-dir", "/tmp/x", "--peer", "tcp://127.0.0.1:1"],
        ["courier-producer", "--id", "P", "--data-dir", "/tmp/x", "--peer", "C=tcp://127.0.0.1"],
        ["courier-producer", "--id", "P", "--data-dir", "/tmp/x", "--peer", "C=tcp://127.0.0.1:1", "--size", "10"],
        ["courier-producer", "--id", "P", "--data-dir", "/tmp/x", "--peer", "C=tcp://127.0.0.1:1", "--durability", "maybe"],
    ])
    func usageErrors(_ commandLine: [String]) async throws {
        let work = Workspace("usage")
        let child = try Child(commandLine[0], Array(commandLine.dropFirst()), stdout: work.file("out"), stderr: work.file("err"))
        #expect(try await child.exitCode(within: .seconds(10)) == 2)
        let lines = work.read("err").split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(work.read("err"))")
        #expect(work.read("out").isEmpty)
        work.remove()
    }
}

/// Issue 21's first finding through both programs: a rejection whose reason is cut inside a
/// multibyte character came back as "processed".
@Suite("Rejections with long multibyte reasons", .serialized, .timeLimit(.minutes(2)))
struct LongReasonProgramTests {
    @Test("a reason of 400 three-byte characters: the producer reports the message rejected, never processed")
    func longMultibyteReason() async throws {
        let work = Workspace("long-reason")
        let port = freeLoopbackPort()
        // `(?:€€…){0}` matches nothing, so only P-1 matches; the pattern makes the reason long.
        let pattern = "^P-1[.](?:" + String(repeating: "€", count: 400) + "){0}"
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)",
                                                      "--reject-matching", pattern],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        let producer = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)",
                                                      "--count", "3", "--size", "10", "--wait"],
                                 stdout: work.file("p.out"), stderr: work.file("p.err"))
        let code = try await producer.exitCode(within: .seconds(60))
        consumer.signal(SIGTERM)
        _ = try await consumer.exitCode(within: .seconds(15))
        #expect(code != 0, "not every message was processed, so the exit code is not 0")
        #expect(work.read("p.err").contains("2 processed, 1 rejected"), "summary: \(work.read("p.err"))")
        let dead = try Child("courier-spool", ["dead-letters", work.file("p"), "--peer", "C", "--json"],
                             stdout: work.file("d.out"), stderr: work.file("d.err"))
        #expect(try await dead.exitCode(within: .seconds(20)) == 0)
        #expect(work.read("d.out").contains("€€€"), "dead letters: \(work.read("d.out").prefix(500))")
        if code != 0 { work.remove() }
    }
}

/// Issue 21 item 3 through the programs: `courier-producer --wait` reports the real outcomes
/// of messages whose outcomes earlier runs learned without reporting them.
@Suite("Outcomes of earlier runs in --wait's summary", .serialized, .timeLimit(.minutes(2)))
struct EarlierOutcomesProgramTests {
    @Test("spooled while the consumer is down, settled by a run without --wait: the next --wait run counts them, rejections included")
    func waitReportsEarlierRuns() async throws {
        let work = Workspace("earlier-outcomes")
        let port = freeLoopbackPort()
        let peer = ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)"]
        // 1. The consumer is down: three messages spooled (P-1, P-2, P-3: numbers 1–3).
        let spooled = try Child("courier-producer", peer + ["--count", "3", "--size", "10"],
                                stdout: work.file("p1.out"), stderr: work.file("p1.err"))
        #expect(try await spooled.exitCode(within: .seconds(30)) == 0, "producer: \(work.read("p1.err"))")
        // 2. The consumer comes up, rejecting P-2; a run without --wait sends four more
        //    (P-1…P-4: numbers 4–7, P-2 is 5) slowly, so that the node delivers all seven and
        //    learns their outcomes while it runs, and exits without reporting them.
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)",
                                                      "--reject-matching", "^P-2[.]"],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        // The run below lasts about two seconds and must deliver while it runs: a consumer
        // that a loaded machine took longer to start would see nothing from it.
        try await poll(within: .seconds(20), "the consumer to listen") { isListening(port) }
        let slow = try Child("courier-producer", peer + ["--count", "4", "--size", "10", "--rate", "2"],
                             stdout: work.file("p2.out"), stderr: work.file("p2.err"))
        #expect(try await slow.exitCode(within: .seconds(30)) == 0, "producer: \(work.read("p2.err"))")
        // The last one may still be on its way when that run exits (it does not wait for
        // delivery): the drain below delivers it; the others were settled during the run.
        try await poll(within: .seconds(30), "the consumer to take six") { completeLines(work.read("c.out")).count >= 6 }
        // 3. --wait with nothing new: the summary covers all seven, with their real outcomes.
        let drain = try Child("courier-producer", peer + ["--wait"], stdout: work.file("p3.out"), stderr: work.file("p3.err"))
        let code = try await drain.exitCode(within: .seconds(60))
        #expect(code == 1, "two were rejected")
        #expect(work.read("p3.err").contains("delivered to C: 5 processed, 2 rejected, 0 expired, 0 dead-lettered; 0 pending"),
                "summary: \(work.read("p3.err"))")
        // 4. Reported once: the next --wait run counts only its own message.
        let input = work.create("input", contents: "later\n")
        let next = try Child("courier-producer", peer + ["--wait"], stdin: input, stdout: work.file("p4.out"), stderr: work.file("p4.err"))
        let nextCode = try await next.exitCode(within: .seconds(60))
        #expect(nextCode == 0, "producer: \(work.read("p4.err"))")
        #expect(work.read("p4.err").contains("delivered to C: 1 processed, 0 rejected, 0 expired, 0 dead-lettered; 0 pending"),
                "summary: \(work.read("p4.err"))")
        consumer.signal(SIGTERM)
        #expect(try await consumer.exitCode(within: .seconds(15)) == 0)
        let delivered = try parseDelivered(work.read("c.out"))
        #expect(delivered.map(\.seq) == Array(1...8))
        #expect(delivered.filter(\.rejected).map(\.seq) == [2, 5])
        if code == 1 && nextCode == 0 { work.remove() }
    }
}
