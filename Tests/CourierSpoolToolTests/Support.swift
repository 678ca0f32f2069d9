import Foundation
import SystemPackage
import Testing
@testable import CourierSpool
@testable import CourierSpoolToolKit
@_exported import SpoolTestSupport

/// What one run of the tool gave.
struct ToolRun {
    var status: Int32
    var standardOutput: String
    var standardError: String
    var outputBytes: [UInt8]

    /// Standard output parsed as a JSON object.
    func json() throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(outputBytes))
        return try #require(value as? [String: Any], "not a JSON object: \(standardOutput)")
    }
}

/// 2025-03-01T12:00:00Z, the "now" of every test that needs reproducible ages.
let fixedNow: Int64 = 1_740_830_400 * 1_000_000_000

/// Runs the tool in this process with captured output.
func tool(_ arguments: [String], now: Int64? = nil, stderrIsTerminal: Bool = false, progressThreshold: Int64 = 64 << 20) -> ToolRun {
    let output = CapturedOutput()
    let error = CapturedOutput(isTerminal: stderrIsTerminal)
    var clock: @Sendable () -> Int64 = ToolContext.wallClock
    if let now { clock = { now } }
    let context = ToolContext(
        standardOutput: output.output, standardError: error.output, now: clock, progressThreshold: progressThreshold
    )
    let status = CourierSpoolTool.main(arguments: arguments, context: context)
    return ToolRun(status: status, standardOutput: output.text, standardError: error.text, outputBytes: output.data)
}

func payload(_ i: Int, size: Int = 30) -> [UInt8] {
    let text = Array("message-\(i)".utf8)
    return Array((text + [UInt8](repeating: UInt8(ascii: "."), count: max(0, size - text.count))).prefix(size))
}


/// A data directory made by the library, closed again: for peer "C", `count` messages of
/// 30 bytes (message-1…), acknowledged up to `acknowledged`; optionally dead letters (one
/// rejected text payload, one expired binary payload) and inbound state from sender "P".
@discardableResult
func makeDataDirectory(
    _ path: FilePath, count: Int = 10, acknowledged: UInt64 = 0, deadLetters: Bool = false, inbound: Bool = false,
    segmentSize: Int = 64 << 20
) throws -> UInt64 {
    var configuration = SpoolConfiguration()
    configuration.durability = .none
    configuration.segmentSize = segmentSize
    let directory = try DataDirectory(path: path, configuration: configuration)
    defer { directory.close() }
    let log = try directory.outboundLog(for: "C")
    if count > 0 {
        _ = try log.appendAndWait(contentsOf: (1...count).map { SpoolEntry(payload: payload($0)) })
    }
    if acknowledged > 0 { _ = try log.acknowledge(upTo: acknowledged) }
    if deadLetters {
        let rejected = SpoolRecord(sequenceNumber: 1001, enqueuedAt: fixedNow - 5_000_000_000, expiresAt: nil, attempt: 2, flags: 0, payload: Array("world".utf8))
        try log.deadLetters.add(rejected, streamID: log.streamID, reason: .rejected("matched ^world$"))
        let expired = SpoolRecord(sequenceNumber: 1002, enqueuedAt: fixedNow - 4_000_000_000, expiresAt: fixedNow - 1_000_000_000, attempt: 1, flags: 0, payload: [0xFF, 0x00, 0x41, 0x0A])
        try log.deadLetters.add(expired, streamID: log.streamID, reason: .expired)
    }
    if inbound {
        try directory.inbound.reserveAndWait(sender: "P", streamID: 0xABC, upTo: 12)
        try directory.inbound.markProcessedAndWait(sender: "P", streamID: 0xABC, sequenceNumbers: Array(1...10) + [12])
    }
    return log.streamID
}

/// Compares two texts line by line, so that a failure names the line that differs.
func expectSameText(_ actual: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
    let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
    for (index, (got, want)) in zip(actualLines, expectedLines).enumerated() where got != want {
        Issue.record("line \(index + 1) differs:\n got: \(got.debugDescription)\nwant: \(want.debugDescription)", sourceLocation: sourceLocation)
        return
    }
    #expect(actualLines.count == expectedLines.count, "\(actualLines.count) lines, expected \(expectedLines.count)", sourceLocation: sourceLocation)
}
