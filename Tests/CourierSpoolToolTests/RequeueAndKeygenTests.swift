import Foundation
import SystemPackage
import Testing
import ZeroMQ
@testable import CourierSpool
@testable import CourierSpoolToolKit

@Suite("requeue, keygen and usage errors")
struct RequeueAndKeygenTests {
    @Test("requeue --seq appends the dead letter as a new pending message and removes it")
    func requeueBySequence() throws {
        let temp = TemporaryDirectory("requeue")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 3, deadLetters: true)
        let run = tool(["requeue", path.string, "--peer", "C", "--seq", "1001"])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput.hasPrefix("requeued dead letter 1 (seq 1001, rejected: matched ^world$) as seq 4\n"))
        let letters = try SpoolInspector(path: path).deadLetters(peer: "C")
        #expect(letters.map(\.id) == [2])
        let pending = try SpoolInspector(path: path).records(peer: "C")
        #expect(pending.last?.record.sequenceNumber == 4)
        #expect(pending.last?.record.payload == Array("world".utf8))
    }

    @Test("requeue --all; an unknown --seq changes nothing and exits 1; a choice is required")
    func requeueAllAndErrors() throws {
        let temp = TemporaryDirectory("requeue-all")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 1, deadLetters: true)
        let missing = tool(["requeue", path.string, "--peer", "C", "--seq", "1001", "--seq", "77"])
        #expect(missing.status == 1)
        #expect(missing.standardError == "courier-spool: peer C has no dead letter with seq 77 (nothing was requeued)\n")
        #expect(try SpoolInspector(path: path).deadLetters(peer: "C").count == 2)

        let none = tool(["requeue", path.string, "--peer", "C"])
        #expect(none.status == 2)
        #expect(none.standardError.split(separator: "\n").count == 1)

        let all = tool(["requeue", path.string, "--peer", "C", "--all"])
        #expect(all.status == 0)
        #expect(all.standardOutput.hasSuffix("Peer C: 2 requeued; the node sends them when it next runs\n"))
        #expect(try SpoolInspector(path: path).deadLetters(peer: "C").isEmpty)
        #expect(try SpoolInspector(path: path).status(peer: "C").pendingCount == 3)
    }

    @Test("requeue while a node holds the directory: one line naming its pid, exit 1, nothing changed")
    func requeueWhileRunning() throws {
        let temp = TemporaryDirectory("requeue-locked")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 1, deadLetters: true)
        let directory = try DataDirectory(path: path)
        defer { directory.close() }
        let run = tool(["requeue", path.string, "--peer", "C", "--all"])
        #expect(run.status == 1)
        #expect(run.standardError == "courier-spool: a node is running on \(path) (pid \(getpid())); stop it before requeueing (nothing was changed)\n")
        #expect(try SpoolInspector(path: path).deadLetters(peer: "C").count == 2)
    }

    @Test("keygen prints a pair whose public key is derived from the secret one")
    func keygenPrinted() throws {
        let run = tool(["keygen"])
        #expect(run.status == 0)
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let publicText = try #require(lines.first { $0.hasPrefix("public: ") }).dropFirst("public: ".count)
        let secretText = try #require(lines.first { $0.hasPrefix("secret: ") }).dropFirst("secret: ".count)
        let pair = try CurveKeyPair(secretKey: CurveKey(z85: secretText))
        #expect(pair.publicKey == (try CurveKey(z85: publicText)))
    }

    @Test("keygen --out writes FILE (0600) and FILE.pub, and never overwrites")
    func keygenFiles() throws {
        let temp = TemporaryDirectory("keygen")
        let file = temp.sub("node.key").string
        let run = tool(["keygen", "--out", file])
        #expect(run.status == 0, "\(run.standardError)")
        let secret = try String(contentsOfFile: file, encoding: .utf8)
        let publicText = try String(contentsOfFile: file + ".pub", encoding: .utf8)
        #expect(secret.hasSuffix("\n") && secret.count == 41)
        let pair = try CurveKeyPair(secretKey: CurveKey(z85: secret))
        #expect(pair.publicKey == (try CurveKey(z85: publicText)))
        #expect(run.standardOutput.contains("public: \(pair.publicKey.z85)"))
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let again = tool(["keygen", "--out", file])
        #expect(again.status == 1)
        #expect(again.standardError == "courier-spool: \(file) exists; refusing to overwrite it (choose another --out)\n")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == secret)

        // Only the .pub exists: still refused, and no secret file is left behind.
        let other = temp.sub("other.key").string
        _ = FileManager.default.createFile(atPath: other + ".pub", contents: Data("x".utf8))
        #expect(tool(["keygen", "--out", other]).status == 1)
        #expect(!FileManager.default.fileExists(atPath: other))
    }

    @Test("usage errors: one line on standard error, exit 2; --help exits 0 with an example")
    func usage() throws {
        let temp = TemporaryDirectory("usage")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 1)
        let cases: [[String]] = [
            ["--no-such-flag"], [], ["status"], ["status", path.string, "--bogus"], ["frobnicate"],
            ["status", temp.sub("missing").string], ["status", temp.path.string],
            ["dump", path.string], ["dump", path.string, "--peer", "C", "--json", "--raw"],
            ["dump", path.string, "--peer", "C", "--limit", "0"], ["requeue", path.string, "--peer", "C", "--all", "--seq", "1"],
            ["verify", path.string, "--peer", "C"],
        ]
        for arguments in cases {
            let run = tool(arguments)
            #expect(run.status == 2, "\(arguments): \(run.status)")
            #expect(run.standardError.hasPrefix("courier-spool: "), "\(arguments)")
            #expect(run.standardError.split(separator: "\n").count == 1, "\(arguments): \(run.standardError)")
            #expect(run.standardOutput.isEmpty, "\(arguments)")
        }
        #expect(tool(["status", temp.sub("missing").string]).standardError.contains("is not a directory"))
        #expect(tool(["status", temp.path.string]).standardError.contains("is not a Courier data directory"))
        for command in ["status", "dump", "verify", "dead-letters", "requeue", "keygen"] {
            let help = tool([command, "--help"])
            #expect(help.status == 0)
            #expect(help.standardOutput.contains("Examples:\n  courier-spool \(command)"), "\(command)")
            #expect(help.standardOutput.contains("--"))
        }
        #expect(tool(["--help"]).standardOutput.contains("SUBCOMMANDS:"))
        #expect(tool(["help", "verify"]).standardOutput.contains("Exit status: 0 clean, 1 damaged"))
    }
}
