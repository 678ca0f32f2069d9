import Foundation
import SystemPackage
import Testing
@testable import CourierSpool
@testable import CourierSpoolToolKit

@Suite("dump and dead-letters")
struct DumpAndDeadLetterTests {
    @Test("dump lists the pending records above the acknowledged mark, with --from and --limit")
    func dump() throws {
        let temp = TemporaryDirectory("dump")
        let path = temp.sub("p")
        let stream = try makeDataDirectory(path, count: 10, acknowledged: 3)
        let run = tool(["dump", path.string, "--peer", "C", "--from", "5", "--limit", "3"])
        #expect(run.status == 0, "\(run.standardError)")
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first == "Peer C, stream \(String(stream, radix: 16)): 7 pending above 3; listing 3")
        #expect(lines[1].hasPrefix("SEQ  ENQUEUED  ") && lines[1].hasSuffix("PREVIEW"))
        #expect(lines.count == 5)
        for (line, seq) in zip(lines[2...], 5...7) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            #expect(fields[0] == String(seq))
            #expect(fields[1].hasSuffix("Z") && fields[1].count == 24)
            #expect(fields[2] == "-")
            // SIZE (two fields), HEADERS ("-": none), PREVIEW.
            #expect(fields.suffix(4) == ["30", "B", "-", String(decoding: payload(seq), as: UTF8.self)])
        }
        // The whole pending range by default; acknowledged records are not pending.
        let all = tool(["dump", path.string, "--peer", "C", "--from", "1"])
        #expect(all.standardOutput.split(separator: "\n").count == 2 + 7)
    }

    @Test("dump --json parses back, payloads in full; --raw writes payloads alone")
    func dumpJSONAndRaw() throws {
        let temp = TemporaryDirectory("dump-json")
        let path = temp.sub("p")
        let directory = try DataDirectory(path: path)
        let log = try directory.outboundLog(for: "C")
        _ = try log.appendAndWait(SpoolEntry(payload: Array("line one".utf8), expiresAt: fixedNow))
        _ = try log.appendAndWait(SpoolEntry(payload: [0xFF, 0xFE, 0x00]))
        directory.close()

        let run = tool(["dump", path.string, "--peer", "C", "--json"])
        #expect(run.status == 0)
        let records = try #require(try run.json()["records"] as? [[String: Any]])
        #expect(records.count == 2)
        #expect(records[0]["seq"] as? Int == 1)
        #expect(records[0]["payload"] as? String == "line one")
        #expect(records[0]["expires_at"] as? String == "2025-03-01T12:00:00.000Z")
        #expect(records[0]["size"] as? Int == 8)
        #expect(records[1]["payload"] == nil)
        #expect(records[1]["payload_base64"] as? String == "//4A")
        #expect(records[1]["expires_at"] is NSNull)

        let raw = tool(["dump", path.string, "--peer", "C", "--raw"])
        #expect(raw.outputBytes == Array("line one\n".utf8) + [0xFF, 0xFE, 0x00, 0x0A])

        let human = tool(["dump", path.string, "--peer", "C"])
        #expect(human.standardOutput.contains("\\xFF\\xFE\\x00"))
    }

    @Test("dead-letters: a table with reasons, and JSON with the payload (text or base64)")
    func deadLetters() throws {
        let temp = TemporaryDirectory("dead")
        let path = temp.sub("p")
        let stream = try makeDataDirectory(path, count: 2, deadLetters: true)
        let human = tool(["dead-letters", path.string, "--peer", "C"])
        #expect(human.status == 0)
        let lines = human.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines[0] == "Peer C: 2 dead letters")
        #expect(lines[1].hasPrefix("ID   SEQ  STREAM"))
        #expect(lines[2].hasPrefix(" 1  1001  \(String(stream, radix: 16))  rejected: matched ^world$  "))
        #expect(lines[2].hasSuffix("  2   5 B  -        world"), "no headers: -, then the preview")
        #expect(lines[3].contains("  expired  ") && lines[3].hasSuffix("\\xFF\\x00A\\x0A"))

        let run = tool(["dead-letters", path.string, "--peer", "C", "--json"])
        #expect(run.status == 0)
        let json = try run.json()
        #expect(json["peer"] as? String == "C")
        let letters = try #require(json["dead_letters"] as? [[String: Any]])
        #expect(letters.count == 2)
        #expect(letters[0]["id"] as? Int == 1)
        #expect(letters[0]["seq"] as? Int == 1001)
        #expect(letters[0]["reason_kind"] as? String == "rejected")
        #expect(letters[0]["reason"] as? String == "matched ^world$")
        #expect(letters[0]["payload"] as? String == "world")
        #expect(letters[0]["enqueued_at"] as? String == "2025-03-01T11:59:55.000Z")
        #expect(letters[1]["reason_kind"] as? String == "expired")
        #expect(letters[1]["payload_base64"] as? String == Data([0xFF, 0x00, 0x41, 0x0A]).base64EncodedString())
        #expect(letters[1]["expires_at"] as? String == "2025-03-01T11:59:59.000Z")

        let none = tool(["dead-letters", try { let p = temp.sub("q"); try makeDataDirectory(p, count: 1); return p.string }(), "--peer", "C"])
        #expect(none.standardOutput == "Peer C: no dead letters\n")
    }

    @Test("an unknown peer is a usage error that names the peers there are")
    func unknownPeer() throws {
        let temp = TemporaryDirectory("dump-peer")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 1)
        for command in ["dump", "dead-letters"] {
            let run = tool([command, path.string, "--peer", "nobody"])
            #expect(run.status == 2)
            #expect(run.standardError == "courier-spool: \(path) has no outbound log for peer nobody (its peers are C)\n")
        }
    }
}
