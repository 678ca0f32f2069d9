import Foundation
import SystemPackage
import Testing
@testable import CourierSpool
@testable import CourierSpoolToolKit

@Suite("dump shows headers")
struct DumpHeaderTests {
    /// Three records for peer "C": with two headers, with none, with one that needs escaping.
    private func makeSpool(_ path: FilePath) throws {
        let directory = try DataDirectory(path: path)
        defer { directory.close() }
        let log = try directory.outboundLog(for: "C")
        _ = try log.appendAndWait(SpoolEntry(payload: Array("with".utf8),
                                             headers: HeaderBlock.encode([("content-type", "text/plain"), ("trace", "abc")])))
        _ = try log.appendAndWait(SpoolEntry(payload: Array("without".utf8)))
        _ = try log.appendAndWait(SpoolEntry(payload: Array("odd".utf8), headers: HeaderBlock.encode([("note", "a\tb \"q\"")])))
    }

    @Test("--json: a headers object per record, name to value in the record's order; {} for none")
    func json() throws {
        let temp = TemporaryDirectory("dump-headers-json")
        let path = temp.sub("p")
        try makeSpool(path)
        let run = tool(["dump", path.string, "--peer", "C", "--json"])
        #expect(run.status == 0, "\(run.standardError)")
        let records = try #require(try run.json()["records"] as? [[String: Any]])
        try #require(records.count == 3)
        #expect(records[0]["headers"] as? [String: String] == ["content-type": "text/plain", "trace": "abc"])
        #expect(records[0]["payload"] as? String == "with")
        #expect(records[0]["size"] as? Int == 4, "size is the payload's")
        let none = try #require(records[1]["headers"] as? [String: Any], "a record without headers has the key too")
        #expect(none.isEmpty)
        #expect(records[2]["headers"] as? [String: String] == ["note": "a\tb \"q\""])
        // The order is the record's: content-type before trace in the text itself.
        let text = run.standardOutput
        let contentType = try #require(text.range(of: "\"content-type\": \"text/plain\""))
        let trace = try #require(text.range(of: "\"trace\": \"abc\""))
        #expect(contentType.lowerBound < trace.lowerBound)
        #expect(text.contains("\"headers\": {}"))
    }

    @Test("the table: a HEADERS column of name: value pairs, escaped as previews are; - for none")
    func table() throws {
        let temp = TemporaryDirectory("dump-headers-table")
        let path = temp.sub("p")
        try makeSpool(path)
        let run = tool(["dump", path.string, "--peer", "C"])
        #expect(run.status == 0, "\(run.standardError)")
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        try #require(lines.count == 5, "\(run.standardOutput)")
        #expect(lines[1].contains("  HEADERS  ") && lines[1].hasSuffix("PREVIEW"))
        let widest = "content-type: text/plain, trace: abc"
        let escaped = #"note: a\tb "q""#
        #expect(lines[2].hasSuffix("  \(widest)  with"), "\(lines[2])")
        #expect(lines[3].hasSuffix("  -" + String(repeating: " ", count: widest.count + 1) + "without"), "\(lines[3])")
        #expect(lines[4].hasSuffix("  " + escaped + String(repeating: " ", count: widest.count - escaped.count + 2) + "odd"),
                "\(lines[4])")
        // The headers' column starts where its title does, on every row.
        let column = try #require(lines[1].range(of: "HEADERS")).lowerBound.utf16Offset(in: lines[1])
        for line in lines[2...] {
            let cell = line.dropFirst(column)
            #expect(cell.hasPrefix("content-type") || cell.hasPrefix("-") || cell.hasPrefix("note"), "\(line)")
        }
    }

    @Test("a long header list is cut with … in the table and kept whole in --json")
    func longHeaders() throws {
        let temp = TemporaryDirectory("dump-headers-long")
        let path = temp.sub("p")
        let value = String(repeating: "v", count: 200)
        let directory = try DataDirectory(path: path)
        let log = try directory.outboundLog(for: "C")
        _ = try log.appendAndWait(SpoolEntry(payload: Array("x".utf8), headers: HeaderBlock.encode([("traceparent", value)])))
        directory.close()
        let human = tool(["dump", path.string, "--peer", "C"])
        let row = try #require(human.standardOutput.split(separator: "\n").last.map(String.init))
        #expect(row.contains("traceparent: " + String(repeating: "v", count: 60 - 13) + "…  x"), "\(row)")
        let json = tool(["dump", path.string, "--peer", "C", "--json"])
        let records = try #require(try json.json()["records"] as? [[String: Any]])
        #expect(records.first?["headers"] as? [String: String] == ["traceparent": value])
    }
}

@Suite("dead-letters shows headers")
struct DeadLetterHeaderTests {
    @Test("a dead letter keeps its message's headers: a headers object in --json ({} for none), a HEADERS column in the table")
    func deadLetters() throws {
        let temp = TemporaryDirectory("dead-letter-headers")
        let path = temp.sub("p")
        do {
            let directory = try DataDirectory(path: path)
            defer { directory.close() }
            let log = try directory.outboundLog(for: "C")
            _ = try log.appendAndWait(SpoolEntry(payload: Array("tagged".utf8), headers: HeaderBlock.encode([("k", "v")])))
            _ = try log.appendAndWait(SpoolEntry(payload: Array("plain".utf8)))
            for record in try log.readPending(from: 1, limit: 2) {
                _ = try log.deadLetters.add(record, streamID: log.streamID, reason: .rejected("no"))
            }
        }
        let run = tool(["dead-letters", path.string, "--peer", "C", "--json"])
        #expect(run.status == 0, "\(run.standardError)")
        let letters = try #require(try run.json()["dead_letters"] as? [[String: Any]])
        try #require(letters.count == 2)
        #expect(letters[0]["headers"] as? [String: String] == ["k": "v"])
        #expect((letters[1]["headers"] as? [String: Any])?.isEmpty == true)
        let table = tool(["dead-letters", path.string, "--peer", "C"])
        let lines = table.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.count == 4 && lines[1].contains("HEADERS") && lines[2].contains("k: v") && lines[3].contains("  -  "), "\(table.standardOutput)")
    }
}
