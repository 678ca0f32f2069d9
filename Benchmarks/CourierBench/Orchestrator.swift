import Foundation
import Synchronization
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// Runs one scenario as two child processes (receiver first, then sender) and gathers
/// what both report.
struct Orchestrator {
    let executable: String
    let dataDirectory: String
    let saturationSeconds: Double
    let latencySeconds: Double
    let senders: Int
    let batch: Int
    let window: Int
    /// A fixed rate for the latency phase instead of half the saturation throughput.
    var latencyRate: Double? = nil
    /// The Courier pacer's longest sleep in the latency phase, microseconds.
    var pacingTick = 200
    /// Where Courier receivers write their delivery timelines (`--timeline`), if anywhere.
    var timelineDirectory: String? = nil
    /// Where courier-producer and courier-consumer are (the programs rows).
    var programs: String? = nil
    /// Messages the producer sends in a programs row.
    var programCount = 1_000_000
    /// The sync-floor executable (the floor row).
    var floor: String? = nil

    func run(_ system: BenchSystem, size: Int) throws -> Scenario {
        if system.isProgram { return try runPrograms(system, size: size) }
        let directory = "\(dataDirectory)/\(system.rawValue)-\(size)"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let kind = system == .baseline ? "baseline" : "courier"
        var common = ["--size", "\(size)", "--saturation-seconds", "\(saturationSeconds)",
                      "--latency-seconds", "\(latencySeconds)", "--window", "\(window)"]
        if system != .baseline { common += ["--durability", system.rawValue] }
        if let latencyRate { common += ["--rate", "\(latencyRate)"] }

        var receiverArguments = ["--role", "\(kind)-receiver", "--data-directory", directory + "/receiver"] + common
        if let timelineDirectory, system != .baseline {
            receiverArguments += ["--timeline-file", "\(timelineDirectory)/\(system.rawValue)-\(size).tsv"]
        }
        let receiver = try Child(executable, receiverArguments)
        guard let ready = receiver.readLine(), ready.hasPrefix("READY ") else {
            receiver.terminate()
            throw BenchError("the \(system.label) receiver did not start")
        }
        let endpoint = String(ready.dropFirst("READY ".count))
        let sender = try Child(executable, ["--role", "\(kind)-sender", "--endpoint", endpoint,
                                            "--data-directory", directory + "/sender",
                                            "--senders", "\(senders)", "--batch", "\(batch)",
                                            "--pacing-tick", "\(pacingTick)"] + common)
        // A scenario that has not finished well after its phases is stopped and reported
        // (its data directories kept), rather than hanging the whole run.
        let limit = saturationSeconds + latencySeconds + 120
        let timedOut = Atomic<Bool>(false)
        let pids = (sender.pid, receiver.pid)
        let watchdog = DispatchWorkItem {
            timedOut.store(true, ordering: .relaxed)
            // SIGKILL: the children's pipes close, so the reads below return.
            kill(pids.0, SIGKILL)
            kill(pids.1, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + limit, execute: watchdog)
        let senderLine = sender.readLine()
        sender.wait()
        receiver.send("stop")
        let receiverLine = receiver.readLine()
        receiver.wait()
        watchdog.cancel()
        if timedOut.load(ordering: .relaxed) {
            throw BenchError("the \(system.label) scenario (\(size) B) did not finish within \(Int(limit)) s; its data is kept in \(directory)")
        }
        try? FileManager.default.removeItem(atPath: directory)
        let decoder = JSONDecoder()
        guard let senderLine, let senderReport = try? decoder.decode(ChildReport.self, from: Data(senderLine.utf8)) else {
            throw BenchError("the \(system.label) sender (\(size) B) reported nothing")
        }
        guard let receiverLine, let receiverReport = try? decoder.decode(ChildReport.self, from: Data(receiverLine.utf8)) else {
            throw BenchError("the \(system.label) receiver (\(size) B) reported nothing")
        }
        return Scenario(system: system, size: size, sender: senderReport, receiver: receiverReport)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A child process with pipes to its standard input and output (standard error is shared).
final class Child {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer: [UInt8] = []

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    /// The next line of the child's output, or nil at its end.
    func readLine() -> String? {
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            buffer += chunk[..<count]
        }
    }

    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        try? input.fileHandleForWriting.close()
    }

    func wait() { process.waitUntilExit() }

    var pid: Int32 { process.processIdentifier }

    func terminate() {
        process.terminate()
        process.waitUntilExit()
    }
}

/// One scenario's figures.
struct Scenario: Codable {
    var system: BenchSystem
    var label: String
    var size: Int
    /// Messages per second at saturation: received (baseline) or with their outcome seen
    /// by the sender (Courier).
    var throughput: Double
    /// The constant rate of the latency phase.
    var latencyRate: Double
    /// Baseline: send → receive (one way). Courier: intended send → outcome seen by the
    /// sender (end to end, through the acknowledgement).
    var latency: LatencySummary
    /// Courier: intended send → delivered to the receiving application (one way).
    var deliveryLatency: LatencySummary?
    var senderPeakResidentBytes: Int64
    var receiverPeakResidentBytes: Int64
    /// Bytes both processes wrote to storage, per message.
    var diskBytesPerMessage: Double
    var senderDiskBytesPerMessage: Double
    var receiverDiskBytesPerMessage: Double
    /// The sender spool's fdatasync calls per second during the saturation phase.
    var syncsPerSecond: Double?
    /// The receiver's inbound-journal fdatasync calls per second during the saturation phase.
    var receiverSyncsPerSecond: Double?
    var senderCPUSeconds: Double
    var receiverCPUSeconds: Double
    /// Courier: copies the sender sent again, per phase (after a retransmission timeout, or
    /// after a reconnection); nil for the baseline and for older runs' files.
    var retransmittedAtSaturation: Int?
    var retransmittedAtLatency: Int?

    init(system: BenchSystem, size: Int, sender: ChildReport, receiver: ChildReport) {
        self.system = system
        self.label = system.label
        self.size = size
        let baseline = system == .baseline
        throughput = (baseline ? receiver.throughput : sender.throughput) ?? 0
        latencyRate = sender.latencyRate ?? 0
        latency = LatencySummary((baseline ? receiver.latency : sender.latency) ?? makeLatencyHistogram())
        deliveryLatency = baseline ? nil : receiver.deliveryLatency.map(LatencySummary.init)
        senderPeakResidentBytes = sender.peakResidentBytes
        receiverPeakResidentBytes = receiver.peakResidentBytes
        let messages = Double(max(1, sender.messages))
        senderDiskBytesPerMessage = Double(sender.writeBytes) / messages
        receiverDiskBytesPerMessage = Double(receiver.writeBytes) / messages
        diskBytesPerMessage = senderDiskBytesPerMessage + receiverDiskBytesPerMessage
        syncsPerSecond = sender.syncs.map { Double($0) / max(sender.syncSeconds ?? sender.seconds, 1e-9) }
        if let syncs = receiver.syncs, let seconds = receiver.syncSeconds, seconds > 0 {
            receiverSyncsPerSecond = Double(syncs) / seconds
        }
        senderCPUSeconds = sender.cpuSeconds
        receiverCPUSeconds = receiver.cpuSeconds
        retransmittedAtSaturation = sender.retransmittedAtSaturation
        retransmittedAtLatency = sender.retransmittedAtLatency
    }
}

/// Percentiles of a latency histogram in microseconds, and the curve for plotting.
struct LatencySummary: Codable {
    var count: UInt64
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var p9999: Double
    var max: Double
    /// (percentile, microseconds) points of the whole distribution.
    var curve: [[Double]]

    init(_ histogram: LatencyHistogram) {
        func micros(_ value: UInt64) -> Double { Double(value) / 1000 }
        count = histogram.totalCount
        p50 = micros(histogram.valueAtPercentile(50))
        p90 = micros(histogram.valueAtPercentile(90))
        p99 = micros(histogram.valueAtPercentile(99))
        p999 = micros(histogram.valueAtPercentile(99.9))
        p9999 = micros(histogram.valueAtPercentile(99.99))
        max = micros(histogram.max)
        var points: [[Double]] = []
        if histogram.totalCount > 0 {
            for value in histogram.percentiles(ticksPerHalfDistance: 5) {
                points.append([value.percentileLevelIteratedTo, micros(value.value)])
                if value.percentileLevelIteratedTo >= 100 { break }
            }
        }
        curve = points
    }
}

/// Everything a run measured.
struct Results: Codable {
    var machine: Machine
    var quick: Bool
    var saturationSeconds: Double
    var latencySeconds: Double
    var senders: Int
    var batch: Int
    var window: Int
    /// The Courier pacer's tick in microseconds (absent in runs from before the option).
    var pacingTick: Int?
    var scenarios: [Scenario]
    var spool: [String]?
    var loadAverageAfter: String = Machine.loadAverage()
}

struct Machine: Codable {
    var cores: Int
    var cpu: String
    var kernel: String
    var loadAverageBefore: String

    static func describe() -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown"
        let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return Machine(cores: ProcessInfo.processInfo.activeProcessorCount, cpu: model, kernel: kernel,
                       loadAverageBefore: loadAverage())
    }

    static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }
}

/// The 1,000,000-pending rows of spool-bench (reopen time, memory), run as a child.
enum SpoolFigures {
    static func measure(executable: String, directory: String) -> [String] {
        Progress.show("spool-bench: 1,000,000 pending …")
        guard let child = try? Child(executable, ["--dir", directory, "--seconds", "0.05", "--pending", "1000000"]) else { return [] }
        var lines: [String] = []
        var inSection = false
        while let line = child.readLine() {
            if line.hasPrefix("### Reopen") { inSection = true; continue }
            if inSection, line.hasPrefix("|"), !line.hasPrefix("| cache"), !line.hasPrefix("| ---") { lines.append(line) }
        }
        child.wait()
        try? FileManager.default.removeItem(atPath: directory)
        return lines
    }
}
