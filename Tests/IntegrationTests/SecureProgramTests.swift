import Foundation
import Testing
import TestSupport

@Suite("Example programs with --secure", .serialized, .timeLimit(.minutes(2)))
struct SecureProgramTests {
    /// Makes a key pair with `courier-spool keygen --out`.
    func keygen(_ work: Workspace, _ name: String) async throws {
        let keygen = try Child("courier-spool", ["keygen", "--out", work.file(name)], stdout: work.file("\(name).out"), stderr: work.file("\(name).err"))
        #expect(try await keygen.exitCode(within: .seconds(20)) == 0, "keygen: \(work.read("\(name).err"))")
    }

    @Test("a secure producer and consumer exchange messages; an untrusted producer gets nothing through")
    func secureExchange() async throws {
        let work = Workspace("secure")
        for name in ["p.key", "c.key", "eve.key"] { try await keygen(work, name) }
        let port = freeLoopbackPort()
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(port)",
                                                      "--secure", "--key", work.file("c.key"), "--trust", "P=\(work.file("p.key.pub"))",
                                                      "--exit-after", "3"],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"))
        // Eve knows the consumer's public key but is not on its allow-list.
        let eve = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("eve"), "--peer", "C=tcp://127.0.0.1:\(port)",
                                                 "--secure", "--key", work.file("eve.key"), "--trust", "C=\(work.file("c.key.pub"))",
                                                 "--count", "5", "--size", "20", "--wait"],
                            stdout: work.file("eve.out"), stderr: work.file("eve.err"))
        let producer = try Child("courier-producer", ["--id", "P", "--data-dir", work.file("p"), "--peer", "C=tcp://127.0.0.1:\(port)",
                                                      "--secure", "--key", work.file("p.key"), "--trust", "C=\(work.file("c.key.pub"))",
                                                      "--count", "3", "--size", "20", "--wait"],
                                 stdout: work.file("p.out"), stderr: work.file("p.err"))
        #expect(try await producer.exitCode(within: .seconds(60)) == 0, "producer: \(work.read("p.err"))")
        #expect(try await consumer.exitCode(within: .seconds(30)) == 0, "consumer: \(work.read("c.err"))")
        let delivered = try parseDelivered(work.read("c.out"))
        #expect(delivered.count == 3)
        #expect(delivered.allSatisfy { $0.payload.hasPrefix("P-") })
        try await eve.kill9()
        work.remove()
    }

    @Test("--secure without a key, or with a missing key file, is a usage error (exit 2)")
    func badSecureFlags() async throws {
        let work = Workspace("secure-flags")
        let noKey = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())", "--secure"],
                              stdout: work.file("1.out"), stderr: work.file("1.err"))
        #expect(try await noKey.exitCode(within: .seconds(20)) == 2)
        let missing = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())",
                                                     "--secure", "--key", work.file("absent.key")],
                                stdout: work.file("2.out"), stderr: work.file("2.err"))
        #expect(try await missing.exitCode(within: .seconds(20)) == 2)
        #expect(work.read("2.err").contains("absent.key"))
        work.remove()
    }
}
