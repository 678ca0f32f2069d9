import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The example programs refuse unusable key files and duplicate `--trust` names as usage
/// errors: exit code 2, one line on standard error naming the problem, nothing spooled.
@Suite("Example programs refuse bad key files", .serialized, .timeLimit(.minutes(2)))
struct KeyFileProgramTests {
    /// A bad `--secure` command line for courier-producer, and what its one line of standard
    /// error must say.
    enum BadKeys: String, CaseIterable, CustomTestStringConvertible {
        case keyReadableByOthers = "a 0644 secret key"
        case publicKeyAsKey = "p.key.pub as --key"
        case duplicateTrust = "--trust C twice"

        var testDescription: String { rawValue }

        /// The security flags, after `chmod` where the case needs it.
        func flags(_ work: Workspace) throws -> [String] {
            switch self {
            case .keyReadableByOthers:
                try #require(chmod(work.file("p.key"), 0o644) == 0)
                return ["--secure", "--key", work.file("p.key"), "--trust", "C=\(work.file("c.key.pub"))"]
            case .publicKeyAsKey:
                return ["--secure", "--key", work.file("p.key.pub"), "--trust", "C=\(work.file("c.key.pub"))"]
            case .duplicateTrust:
                return ["--secure", "--key", work.file("p.key"), "--trust", "C=\(work.file("c.key.pub"))",
                        "--trust", "C=\(work.file("d.key.pub"))"]
            }
        }

        /// What the line on standard error must contain.
        func expected(_ work: Workspace) -> [String] {
            switch self {
            case .keyReadableByOthers:
                ["courier-producer: unprotected secret key file \(work.file("p.key"))", "mode 0644", "chmod 600 \(work.file("p.key"))"]
            case .publicKeyAsKey:
                ["courier-producer: \(work.file("p.key.pub")) is a public key file", "pass \(work.file("p.key")) instead"]
            case .duplicateTrust:
                ["courier-producer: --trust C is given twice", "C=\(work.file("d.key.pub"))"]
            }
        }
    }

    /// Keys as `courier-spool keygen --out` writes them: p.key (0600) and p.key.pub, and so on.
    func keys(_ work: Workspace) async throws {
        for name in ["p.key", "c.key", "d.key"] { try await SecureProgramTests().keygen(work, name) }
    }

    /// The producer's command line: three generated messages for C, which never listens.
    func producer(_ work: Workspace, _ security: [String]) -> [String] {
        ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(freeLoopbackPort())",
         "--count", "3", "--size", "20"] + security
    }

    /// How many messages the spool in `dataDirectory` holds for any peer, by
    /// `courier-spool status --json`; 0 when the directory was never created.
    func spooled(_ work: Workspace, _ dataDirectory: String) async throws -> Int {
        guard FileManager.default.fileExists(atPath: dataDirectory) else { return 0 }
        let status = try Child("courier-spool", ["status", dataDirectory, "--json"], stdout: work.file("status.out"), stderr: work.file("status.err"))
        try #require(try await status.exitCode(within: .seconds(20)) == 0, "courier-spool status: \(work.read("status.err"))")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(work.read("status.out").utf8)) as? [String: Any])
        let peers = try #require(report["peers"] as? [[String: Any]], "no peers in \(work.read("status.out"))")
        return peers.reduce(0) { $0 + ($1["pending"] as? Int ?? 0) }
    }

    @Test("control: the same producer with good keys spools its three messages (so the check below can see them)")
    func goodKeysSpool() async throws {
        let work = Workspace("key-files-control")
        try await keys(work)
        let good = ["--secure", "--key", work.file("p.key"), "--trust", "C=\(work.file("c.key.pub"))"]
        let child = try Child("courier-producer", producer(work, good), stdout: work.file("out"), stderr: work.file("err"))
        #expect(try await child.exitCode(within: .seconds(30)) == 0, "stderr: \(work.read("err"))")
        #expect(try await spooled(work, work.file("p")) == 3)
        work.remove()
    }

    @Test("courier-producer refuses a bad key file or a duplicate --trust: exit 2, one line naming the problem, nothing spooled",
          arguments: BadKeys.allCases)
    func refused(_ bad: BadKeys) async throws {
        let work = Workspace("key-files")
        try await keys(work)
        let child = try Child("courier-producer", producer(work, try bad.flags(work)), stdout: work.file("out"), stderr: work.file("err"))
        #expect(try await child.exitCode(within: .seconds(20)) == 2, "stderr: \(work.read("err"))")
        let lines = work.read("err").split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(work.read("err"))")
        for fragment in bad.expected(work) {
            #expect(lines.first?.contains(fragment) == true, "missing \(fragment) in: \(work.read("err"))")
        }
        #expect(work.read("out").isEmpty, "stdout: \(work.read("out"))")
        #expect(try await spooled(work, work.file("p")) == 0)
        #expect(!FileManager.default.fileExists(atPath: work.file("p")), "the data directory was not even opened")
        work.remove()
    }

    @Test("courier-consumer refuses a 0644 secret key the same way, before it listens")
    func consumerRefusesAnUnprotectedKey() async throws {
        let work = Workspace("key-files-consumer")
        try await keys(work)
        try #require(chmod(work.file("c.key"), 0o640) == 0)
        let child = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())",
                                                   "--secure", "--key", work.file("c.key"), "--trust", "P=\(work.file("p.key.pub"))"],
                              stdout: work.file("out"), stderr: work.file("err"))
        let code: Int32
        do { code = try await child.exitCode(within: .seconds(20)) } catch {
            try await child.kill9()   // it accepted the key and is listening: do not leave it behind
            throw error
        }
        #expect(code == 2, "stderr: \(work.read("err"))")
        let lines = work.read("err").split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(work.read("err"))")
        #expect(lines.first?.contains("mode 0640") == true && lines.first?.contains("chmod 600 \(work.file("c.key"))") == true,
                "stderr: \(work.read("err"))")
        #expect(!FileManager.default.fileExists(atPath: work.file("c")))
        work.remove()
    }
}
