import Foundation
import Synchronization
import SystemPackage
import Testing
@testable import CourierSpool

/// The `spool-bench` executable built beside this test bundle, if any.
private func benchBinary() -> String? {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("spool-bench").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

@Suite("Crash")
struct CrashTests {
    @Test(
        "kill -9 of a process appending under group commit loses no completed append",
        .enabled(if: benchBinary() != nil, "spool-bench was not built beside the tests (swift build --build-tests builds it)"),
        .timeLimit(.minutes(1))
    )
    func killNine() async throws {
        let binary = try #require(benchBinary())
        let temp = TemporaryDirectory("crash")
        let path = temp.sub("data")
        var everCompleted: UInt64 = 0
        for round in 1...3 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--crash-writer", path.string]
            let pipe = Pipe()
            process.standardOutput = pipe
            let output = Mutex<[UInt8]>([])
            let reader = pipe.fileHandleForReading
            reader.readabilityHandler = { handle in
                let data = handle.availableData
                output.withLock { $0 += Array(data) }
            }
            try process.run()
            let target = 300 * round
            let lines = { output.withLock { $0.filter { $0 == UInt8(ascii: "\n") }.count } }
            #expect(await eventually(timeout: .seconds(20)) { lines() >= target })
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            reader.readabilityHandler = nil
            let rest = reader.readDataToEndOfFile()
            let text = output.withLock { String(decoding: $0 + Array(rest), as: UTF8.self) }
            let completed = text.split(separator: "\n").compactMap { UInt64($0) }
            everCompleted = max(everCompleted, completed.max() ?? 0)

            let events = EventCollector()
            let directory = try DataDirectory(path: path, configuration: configuration(events: events))
            let log = try await directory.outboundLog(for: "crash-peer")
            let records = try allPending(log)
            directory.close()
            #expect(events.corruptions.isEmpty, "round \(round): \(events.corruptions)")
            // Exactly a prefix 1...n, every completed append in it, every payload intact.
            #expect(records.map(\.sequenceNumber) == Array(1...UInt64(records.count)), "round \(round)")
            #expect(UInt64(records.count) >= everCompleted, "round \(round): \(records.count) records, \(everCompleted) completed")
            #expect(records.allSatisfy { $0.payload == Array("p-\($0.sequenceNumber)".utf8) }, "round \(round)")
            everCompleted = max(everCompleted, UInt64(records.count))
        }
    }
}
