import Foundation

/// The latency floor row: `tools/sync-floor.c` (built by tools/bench) run at the rate of
/// Courier's group-commit latency phase, in the same run. Two processes over 127.0.0.1: the
/// sender appends and fdatasyncs before sending, the receiver appends a mark and fdatasyncs
/// before acknowledging, and nothing else (no ZeroMQ, no framing, no application): the two
/// syncs Courier's guarantees put in series. Its latency is measured as courier-bench's
/// (intended send time → acknowledgement seen, coordinated omission corrected).
extension Orchestrator {
    func runFloor(size: Int, rate: Double) throws -> Scenario {
        guard let floor else { throw BenchError("the floor row needs --floor BINARY (tools/bench builds it)") }
        let directory = "\(dataDirectory)/floor-\(size)"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try Self.freePort()
        let common = ["--rate", "\(Int(rate.rounded()))", "--seconds", "\(latencySeconds)", "--tick-us", "\(pacingTick)"]
        let receiver = try Child(floor, ["receive", "\(port)", directory + "/receiver.log"] + common)
        guard receiver.readLine() == "ready" else {
            receiver.terminate()
            throw BenchError("the sync-floor receiver did not start")
        }
        let sender = try Child(floor, ["send", "\(port)", directory + "/sender.log"] + common)
        let line = sender.readLine() ?? ""
        sender.wait()
        receiver.wait()
        var values: [String: Double] = [:]
        for word in line.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        guard let p50 = values["p50_ms"], let p99 = values["p99_ms"], let p999 = values["p999_ms"], let max = values["max_ms"] else {
            throw BenchError("sync-floor printed no latency: \(line)")
        }
        let report = ChildReport(role: "floor", throughput: nil, saturationMessages: nil, latencyRate: rate,
                                 latencyMessages: Int(values["messages"] ?? 0), latency: nil, deliveryLatency: nil,
                                 peakResidentBytes: 0, writeBytes: 0, messages: 0, syncs: nil, seconds: latencySeconds, cpuSeconds: 0)
        var scenario = Scenario(system: .floor, size: size, sender: report, receiver: report)
        scenario.latency = LatencySummary(p50: p50 * 1000, p99: p99 * 1000, p999: p999 * 1000, max: max * 1000)
        return scenario
    }
}

extension LatencySummary {
    /// Percentiles another program measured, in microseconds (no curve).
    init(p50: Double, p99: Double, p999: Double, max: Double) {
        count = 0
        self.p50 = p50
        p90 = p50
        self.p99 = p99
        self.p999 = p999
        p9999 = p999
        self.max = max
        curve = []
    }
}
