import Foundation
import Testing

/// docs/PROTOCOL.md as an independent implementer reads it: `tools/protocol-conformance` is a
/// minimal sender written from the document alone (Python, pyzmq), run against a real
/// courier-consumer built next to this test bundle. It checks the version-2 handshake (nonce
/// echoed, limits announced), version-2 DATA with and without headers, version 1, VERSIONS
/// for an unknown version, hostile version-2 frames (refused, no state change, nothing
/// printed, the consumer lives on), and the version-2 WELCOME's received ranges. Each check
/// prints PASS or FAIL with its reasons; a disagreement between the document and the
/// consumer fails here.
@Suite("Protocol conformance: a sender written from docs/PROTOCOL.md against courier-consumer")
struct ProtocolConformanceTests {
    @Test("tools/protocol-conformance passes every check",
          .timeLimit(.minutes(2)),
          .enabled(if: PythonZMQ.isAvailable,
                   "needs python3 with pyzmq, and `python3 -m pip install --quiet pyzmq` failed or python3 is missing"))
    func conformance() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let tool = root.appendingPathComponent("tools/protocol-conformance").path
        try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing")
        _ = try Programs.path("courier-consumer")
        let work = Workspace("protocol-conformance")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", tool, "--bin", Programs.directory]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: work.create("conformance.out")))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: work.create("conformance.err")))
        try process.run()
        do {
            // Every wait of the tool has a deadline of 5 s; all of them together stay far below this.
            try await poll(within: .seconds(100), "tools/protocol-conformance to finish") { !process.isRunning }
        } catch {
            process.interrupt()   // the tool kills its consumer on SIGINT
            throw error
        }
        let code = process.terminationStatus
        let output = work.read("conformance.out")
        print("tools/protocol-conformance:\n" + output)
        #expect(code == 0, "tools/protocol-conformance exited \(code):\n\(output)\n\(work.read("conformance.err").suffix(2000))")
        #expect(output.contains(" 0 failed"), "no closing line: \(output)")
        if code == 0 { work.remove() }
    }
}

/// Whether `python3` (from PATH) imports zmq, after trying `python3 -m pip install --quiet
/// pyzmq` once if it does not.
enum PythonZMQ {
    static let isAvailable: Bool = {
        if run(["python3", "-c", "import zmq"]) { return true }
        guard run(["python3", "--version"]) else { return false }
        _ = run(["python3", "-m", "pip", "install", "--quiet", "pyzmq"])
        return run(["python3", "-c", "import zmq"])
    }()

    private static func run(_ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        process.waitUntilExit()
        return process.terminationReason == .exit && process.terminationStatus == 0
    }
}
