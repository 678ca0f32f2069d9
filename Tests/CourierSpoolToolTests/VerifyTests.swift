import Foundation
import SystemPackage
import Testing
@testable import CourierSpool
@testable import CourierSpoolToolKit

@Suite("verify")
struct VerifyTests {
    @Test("a clean spool: exit 0, files and records counted")
    func clean() throws {
        let temp = TemporaryDirectory("verify-clean")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 20, acknowledged: 5, deadLetters: true, inbound: true)
        let run = tool(["verify", path.string])
        #expect(run.status == 0, "\(run.standardOutput)")
        // log.meta, one segment, deadletters.log, inbound.journal.
        #expect(run.standardOutput.hasPrefix("Verified \(path): 4 files, "))
        #expect(run.standardOutput.hasSuffix("Result: clean\n"))
        #expect(run.standardError.isEmpty)
        let json = try tool(["verify", path.string, "--json"]).json()
        #expect(json["clean"] as? Bool == true)
        #expect(json["files_checked"] as? Int == 4)
        #expect((json["problems"] as? [Any])?.isEmpty == true)
    }

    @Test("a damaged copy: exit 1, the file and byte offset of the damage; the original stays clean")
    func damaged() throws {
        let temp = TemporaryDirectory("verify-damaged")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 20)
        let copy = temp.sub("copy")
        try copyDirectory(path, to: copy)
        let segment = try #require(try segmentFiles(peerDirectory(copy, "C")).first)
        var bytes = try readFile(segment)
        let recordSize = 40 + 30
        let damagedOffset = 48 + 5 * recordSize  // the sixth record
        bytes[damagedOffset + 45] ^= 0x20
        try writeFile(segment, bytes)

        #expect(tool(["verify", path.string]).status == 0)
        let run = tool(["verify", copy.string])
        #expect(run.status == 1)
        #expect(run.standardOutput.contains("DAMAGED      \(segment) at byte \(damagedOffset): "))
        #expect(run.standardOutput.contains("Result: DAMAGED (1 problem)"))
        let json = try tool(["verify", copy.string, "--json"]).json()
        #expect(json["clean"] as? Bool == false)
        let problem = try #require((json["problems"] as? [[String: Any]])?.first)
        #expect(problem["file"] as? String == segment.string)
        #expect(problem["offset"] as? Int == damagedOffset)
        #expect(tool(["verify", copy.string, "--json"]).status == 1)
    }

    @Test("after the node quarantined the damage: clean again, the quarantined file listed (and counted by status)")
    func quarantined() throws {
        let temp = TemporaryDirectory("verify-quarantine")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 20)
        let segment = try #require(try segmentFiles(peerDirectory(path, "C")).first)
        var bytes = try readFile(segment)
        bytes[48 + 5 * 70 + 45] ^= 0x20
        try writeFile(segment, bytes)
        #expect(tool(["verify", path.string]).status == 1)
        DataDirectory.reopenForRecovery(path)  // the node's next start quarantines the damage

        let run = tool(["verify", path.string])
        #expect(run.status == 0, "\(run.standardOutput)")
        #expect(run.standardOutput.contains("QUARANTINED  \(peerDirectory(path, "C"))/quarantine/"))
        let peer = try #require((try tool(["status", path.string, "--json"]).json()["peers"] as? [[String: Any]])?.first)
        #expect((peer["quarantined_files"] as? [String])?.count == 1)
        #expect(peer["pending"] as? Int == 19)  // only the damaged sixth record is gone
        #expect(tool(["status", path.string]).standardOutput.contains("quarantined (peer C): "))
    }

    @Test("a torn tail (a crash mid-append) is an incomplete record, not damage: exit 0")
    func tornTail() throws {
        let temp = TemporaryDirectory("verify-torn")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 5)
        let segment = try #require(try segmentFiles(peerDirectory(path, "C")).first)
        let bytes = try readFile(segment)
        // The last record cut short (with the end marker after it: 40 bytes).
        try writeFile(segment, Array(bytes.dropLast(40 + 12)))
        let run = tool(["verify", path.string])
        #expect(run.status == 0, "\(run.standardOutput)")
        #expect(run.standardOutput.contains("INCOMPLETE   \(segment) at byte \(48 + 4 * 70): "))
        #expect(run.standardOutput.hasSuffix("Result: clean\n"))
        let json = try tool(["verify", path.string, "--json"]).json()
        #expect((json["incomplete_tails"] as? [[String: Any]])?.first?["offset"] as? Int == 48 + 4 * 70)
        // status still counts what is whole.
        let peer = try #require((try tool(["status", path.string, "--json"]).json()["peers"] as? [[String: Any]])?.first)
        #expect(peer["pending"] as? Int == 4)
    }

    @Test("progress on standard error only when it is a terminal and the spool is large")
    func progress() throws {
        let temp = TemporaryDirectory("verify-progress")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 50, segmentSize: 1024)
        let quiet = tool(["verify", path.string], stderrIsTerminal: false, progressThreshold: 1)
        #expect(quiet.standardError.isEmpty)
        let small = tool(["verify", path.string], stderrIsTerminal: true)
        #expect(small.standardError.isEmpty)
        let shown = tool(["verify", path.string], stderrIsTerminal: true, progressThreshold: 1)
        #expect(shown.standardError.contains("verifying: ") && shown.standardError.contains(" KiB)"))
        #expect(shown.standardError.hasSuffix("\r\u{1B}[K"))
        #expect(shown.status == 0)
    }
}

extension DataDirectory {
    /// Opens and closes the directory, as a node's restart would: recovery runs.
    static func reopenForRecovery(_ path: FilePath) {
        (try? DataDirectory(path: path))?.close()
    }
}
