import Foundation
import Testing
import TestSupport

/// `courier-producer --header`, the consumer's `headers` key and `courier-spool dump`'s
/// headers, through the built programs over 127.0.0.1.
@Suite("Message headers through the programs", .serialized, .timeLimit(.minutes(2)))
struct HeaderProgramTests {
    static let headerArguments = ["--header", "content-type=text/plain", "--header", "trace=abc"]

    @Test("every message of a run with --header reaches the consumer with exactly those headers, in order; none is {}")
    func headersReachTheConsumer() async throws {
        let work = Workspace("headers")
        let port = freeLoopbackPort()
        let peer = ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)"]
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)"],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        let producer = try Child("courier-producer", peer + Self.headerArguments + ["--count", "20", "--size", "16", "--wait"],
                                 stdout: work.file("p1.out"), stderr: work.file("p1.err"))
        let code = try await producer.exitCode(within: .seconds(60))
        #expect(code == 0, "producer: \(work.read("p1.err"))")
        // A run without --header, from standard input: its message has no headers.
        let input = work.create("input", contents: "plain\n")
        let plain = try Child("courier-producer", peer + ["--wait"], stdin: input, stdout: work.file("p2.out"), stderr: work.file("p2.err"))
        let plainCode = try await plain.exitCode(within: .seconds(60))
        #expect(plainCode == 0, "producer: \(work.read("p2.err"))")
        consumer.signal(SIGTERM)
        // A bound, not a wait: the consumer exits in well under a second, but the suite runs
        // beside the chaos suite on two cores, where one CI run saw it take longer than 15 s.
        #expect(try await consumer.exitCode(within: .seconds(45)) == 0, "consumer: \(work.read("c.err"))")

        let lines = completeLines(work.read("c.out"))
        try #require(lines.count == 21, "consumer output: \(work.read("c.out").prefix(2000))")
        for line in lines.prefix(20) {
            #expect(try headers(of: line) == ["content-type": "text/plain", "trace": "abc"], "\(line)")
            #expect(line.contains(#""headers":{"content-type":"text/plain","trace":"abc"}"#), "in the sender's order: \(line)")
        }
        #expect(try headers(of: lines[20]).isEmpty, "\(lines[20])")
        #expect(lines[20].contains(#""headers":{}"#), "\(lines[20])")
        // The other keys are as before.
        let delivered = try parseDelivered(work.read("c.out"))
        #expect(delivered.map(\.seq) == Array(1...21))
        #expect(delivered.last?.payload == "plain")
        if code == 0 && plainCode == 0 { work.remove() }
    }

    @Test("a bad --header is a usage error: exit 2, one line naming the problem, nothing stored", arguments: [
        (["--header", "content-type"], "expected NAME=VALUE"),
        (["--header", "=text/plain"], "the name before '=' is empty"),
        (["--header", "trace=abc", "--header", "trace=def"], #"the name "trace" is given twice"#),
    ])
    func badHeader(_ arguments: [String], _ problem: String) async throws {
        let work = Workspace("bad-header")
        let child = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:1",
                                                   "--count", "1"] + arguments,
                              stdout: work.file("out"), stderr: work.file("err"))
        #expect(try await child.exitCode(within: .seconds(10)) == 2)
        let error = work.read("err")
        #expect(error.split(separator: "\n").count == 1, "stderr: \(error)")
        #expect(error.hasPrefix("courier-producer: ") && error.contains(problem), "stderr: \(error)")
        #expect(work.read("out").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: work.file("p")), "the data directory was not even created")
        work.remove()
    }

    @Test("courier-spool dump shows the headers of messages spooled for a peer that is not running")
    func dumpShowsSpooledHeaders() async throws {
        let work = Workspace("dump-headers")
        let arguments = ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(freeLoopbackPort())",
                         "--count", "3", "--size", "10"]
        // `expr=a=b`: split at the first '=', so the value is a=b.
        let producer = try Child("courier-producer", arguments + Self.headerArguments + ["--header", "expr=a=b"],
                                 stdout: work.file("p.out"), stderr: work.file("p.err"))
        #expect(try await producer.exitCode(within: .seconds(30)) == 0, "producer: \(work.read("p.err"))")

        let json = try Child("courier-spool", ["dump", work.file("p"), "--peer", "C", "--json"],
                             stdout: work.file("d.json"), stderr: work.file("d.err"))
        #expect(try await json.exitCode(within: .seconds(20)) == 0, "dump: \(work.read("d.err"))")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(work.read("d.json").utf8)) as? [String: Any])
        let records = try #require(document["records"] as? [[String: Any]], "dump: \(work.read("d.json").prefix(1000))")
        #expect(records.count == 3)
        for record in records {
            #expect(record["headers"] as? [String: String] == ["content-type": "text/plain", "trace": "abc", "expr": "a=b"])
        }

        let human = try Child("courier-spool", ["dump", work.file("p"), "--peer", "C"],
                              stdout: work.file("d.txt"), stderr: work.file("d2.err"))
        #expect(try await human.exitCode(within: .seconds(20)) == 0, "dump: \(work.read("d2.err"))")
        let rows = work.read("d.txt").split(separator: "\n").dropFirst(2)
        #expect(rows.count == 3)
        #expect(rows.allSatisfy { $0.contains("content-type: text/plain, trace: abc, expr: a=b") }, "dump: \(work.read("d.txt"))")
        work.remove()
    }

    /// The `headers` object of one consumer line.
    private func headers(of line: String) throws -> [String: String] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
        return try #require(object["headers"] as? [String: String], "no headers object in \(line)")
    }
}
