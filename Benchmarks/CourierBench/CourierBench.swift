// courier-bench: raw ZeroMQ DEALER→ROUTER beside Courier end to end, in one run, two
// processes per scenario (the benchmark re-executes itself with --role for each side).
//
//   tools/bench [--quick] [--json]
//
// Prints a Markdown table with Courier's figures as ratios of the baseline's (or JSON with
// --json); progress on standard error when it is a terminal. docs/PERFORMANCE.md explains
// the method.
import ArgumentParser
import Courier
import Foundation
import Synchronization

@main
struct CourierBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "courier-bench",
        abstract: "Throughput, latency and memory of Courier end to end, beside raw ZeroMQ.")

    @Flag(help: "Only 100-byte messages and shorter phases (finishes in well under two minutes).")
    var quick = false

    @Flag(help: "Print the results as JSON instead of a table.")
    var json = false

    @Option(help: "Message sizes in bytes, comma-separated. Default: 100,1024,65536.")
    var sizes: String?

    @Option(help: "Systems to run, comma-separated: baseline, group, interval, none, pipelined, rejecting, programs, programs-rejecting.")
    var systems = "baseline,group,interval,none,pipelined,rejecting,programs,programs-rejecting,floor"

    @Option(help: "The sync-floor executable (tools/sync-floor.c, which tools/bench builds), for the floor row: run at the rate of group commit's latency phase. Without it that row is skipped.")
    var floor: String?

    @Option(help: "Where courier-producer and courier-consumer are, for the programs rows (tools/bench passes its release build). Without it those rows are skipped.")
    var programs: String?

    @Option(help: "Messages the producer sends in the programs rows. Default: 1000000 (the node start and the summary weigh less than with fewer).")
    var programCount: Int?

    @Option(help: "Seconds of the saturation phase. Default: 3 (1.5 with --quick).")
    var saturationSeconds: Double?

    @Option(help: "Seconds of the constant-rate latency phase. Default: 4 (2 with --quick).")
    var latencySeconds: Double?

    @Option(help: "Concurrent sending tasks in Courier's saturation phase.")
    var senders = 8

    @Option(help: "Messages per send(batch:) in Courier's saturation phase.")
    var batch = 256

    @Option(help: "Courier's in-flight window (NodeConfiguration.inFlightWindow) on both sides.")
    var window = NodeConfiguration(id: "x", dataDirectory: "/").inFlightWindow

    @Option(help: "Where the scenarios' data directories go (emptied per scenario).")
    var dataDirectory = "/tmp/courier-bench"

    @Option(help: "Also add the 1,000,000-pending spool rows from this spool-bench executable.")
    var spoolBench: String?

    @Option(help: "Print the table of a saved --json run instead of running.")
    var render: String?

    @Option(name: .customLong("latency-rate"), help: "Messages per second in the latency phase. Default: half of the saturation throughput measured just before.")
    var latencyRate: Double?

    @Option(name: .customLong("pacing-tick"), help: "Courier's latency phase: the pacer wakes at most every this many microseconds and sends what is due in one send(batch:).")
    var pacingTick = 200

    @Option(help: "Also write each Courier scenario's delivery timeline to <timeline>/<system>-<size>.tsv: per 2 ms of intended send time in the latency phase, the worst one-way latency (finds stalls).")
    var timeline: String?

    // The child roles.
    @Option(help: .hidden) var role: String?
    @Option(help: .hidden) var endpoint: String?
    @Option(help: .hidden) var durability: String?
    @Option(help: .hidden) var size = 100
    @Option(help: .hidden) var rate: Double?
    @Option(help: .hidden) var timelineFile: String?

    func run() throws {
        let saturation = saturationSeconds ?? (quick ? 1.5 : 3)
        let latency = latencySeconds ?? (quick ? 2 : 4)
        if let render {
            let data = try Data(contentsOf: URL(fileURLWithPath: render))
            print(Report.markdown(try JSONDecoder().decode(Results.self, from: data)))
            return
        }
        if let role {
            try runChild(role, saturation: saturation, latency: latency)
            return
        }
        let sizeList = sizes.map { $0.split(separator: ",").compactMap { Int($0) } } ?? (quick ? [100] : [100, 1024, 65536])
        let systemList = try systems.split(separator: ",").map { name throws -> BenchSystem in
            guard let system = BenchSystem(rawValue: String(name)) else {
                throw ValidationError("unknown system \(name); use " + BenchSystem.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return system
        }.filter { system in
            if system.isProgram, programs == nil {
                FileHandle.standardError.write(Data("courier-bench: skipping \(system.rawValue): no --programs directory\n".utf8))
                return false
            }
            if system == .floor, floor == nil {
                FileHandle.standardError.write(Data("courier-bench: skipping floor: no --floor executable\n".utf8))
                return false
            }
            return true
        }
        var orchestrator = Orchestrator(
            executable: CommandLine.arguments[0], dataDirectory: dataDirectory,
            saturationSeconds: saturation, latencySeconds: latency, senders: senders, batch: batch, window: window)
        orchestrator.latencyRate = latencyRate
        orchestrator.pacingTick = pacingTick
        orchestrator.timelineDirectory = timeline
        orchestrator.programs = programs
        orchestrator.floor = floor
        orchestrator.programCount = programCount ?? 1_000_000
        if let timeline { try FileManager.default.createDirectory(atPath: timeline, withIntermediateDirectories: true) }
        var results = Results(machine: Machine.describe(), quick: quick, saturationSeconds: saturation,
                              latencySeconds: latency, senders: senders, batch: batch, window: window,
                              pacingTick: pacingTick, scenarios: [])
        for size in sizeList {
            for system in systemList {
                Progress.show("\(system.label), \(size) B …")
                if system == .floor {
                    // At the rate of group commit's latency phase in this run (or --latency-rate).
                    let group = results.scenarios.first { $0.system == .group && $0.size == size }
                    guard let rate = latencyRate ?? group?.latencyRate else {
                        FileHandle.standardError.write(Data("courier-bench: skipping floor: it runs at group's latency rate; add group before it, or --latency-rate\n".utf8))
                        continue
                    }
                    results.scenarios.append(try orchestrator.runFloor(size: size, rate: rate))
                    continue
                }
                results.scenarios.append(try orchestrator.run(system, size: size))
            }
        }
        if let spoolBench { results.spool = SpoolFigures.measure(executable: spoolBench, directory: dataDirectory + "/spool") }
        Progress.done()
        results.loadAverageAfter = Machine.loadAverage()
        try? FileManager.default.removeItem(atPath: dataDirectory)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print(Report.markdown(results))
        }
    }

    private func runChild(_ role: String, saturation: Double, latency: Double) throws {
        switch role {
        case "baseline-receiver":
            try BaselineRoles.receiver()
        case "baseline-sender":
            try BaselineRoles.sender(endpoint: endpoint ?? "", size: size, saturationSeconds: saturation,
                                     latencySeconds: latency, rate: rate)
        case "courier-receiver", "courier-sender":
            guard let system = durability.flatMap(BenchSystem.init(rawValue:)), let durability = system.durability else {
                throw ValidationError("--durability group|interval|none is required")
            }
            let directory = dataDirectory
            CourierRoles.window.store(window, ordering: .relaxed)
            let (endpoint, size, rate, senders, batch) = (self.endpoint ?? "", self.size, self.rate, self.senders, self.batch)
            let tick = UInt64(max(1, pacingTick)) * 1_000
            let timelineFile = self.timelineFile
            let outcome = BlockingOutcome()
            Task {
                do {
                    if role == "courier-receiver" {
                        try await CourierRoles.receiver(directory: directory, durability: durability, timelineFile: timelineFile,
                                                        rejectEveryOther: system == .rejecting)
                    } else {
                        try await CourierRoles.sender(endpoint: endpoint, directory: directory, durability: durability,
                                                      size: size, saturationSeconds: saturation, latencySeconds: latency,
                                                      rate: rate, senders: senders, batch: batch, tick: tick,
                                                      pipelined: system == .pipelined)
                    }
                    outcome.finish(nil)
                } catch {
                    outcome.finish("\(error)")
                }
            }
            // The main thread is not part of the cooperative pool: waiting here blocks no task.
            if let failure = outcome.wait() { fail("\(role): \(failure)") }
        default:
            throw ValidationError("unknown role \(role)")
        }
    }
}

/// What one scenario runs.
enum BenchSystem: String, Codable, Sendable, CaseIterable {
    case baseline, group, interval, none
    /// Group commit, one task sending one message per call through a `Publisher`.
    case pipelined
    /// Group commit, batched senders; the receiving application rejects every other message.
    case rejecting
    /// `courier-producer --count N --wait` into `courier-consumer > /dev/null`.
    case programs
    /// The same, with the consumer rejecting every other message (`--reject-matching`).
    case programsRejecting = "programs-rejecting"
    /// tools/sync-floor: the two fdatasyncs in series alone, at group commit's latency rate.
    case floor

    var durability: Durability? {
        switch self {
        case .baseline, .floor: nil
        case .group, .pipelined, .rejecting, .programs, .programsRejecting: .groupCommit
        case .interval: .interval(.milliseconds(10))
        case .none: Durability.none
        }
    }

    var isProgram: Bool { self == .programs || self == .programsRejecting }

    var label: String {
        switch self {
        case .baseline: "raw ZeroMQ"
        case .group: "Courier groupCommit"
        case .interval: "Courier interval(10ms)"
        case .none: "Courier none"
        case .pipelined: "Courier groupCommit, one task, one message per send (Publisher)"
        case .rejecting: "Courier groupCommit, half rejected"
        case .programs: "courier-producer → courier-consumer, groupCommit"
        case .programsRejecting: "courier-producer → courier-consumer, groupCommit, half rejected"
        case .floor: "sync floor: two fdatasyncs in series, nothing else (C)"
        }
    }
}

/// A result a thread can wait for.
final class BlockingOutcome: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let failure = Mutex<String?>(nil)

    func finish(_ failure: String?) {
        self.failure.withLock { $0 = failure }
        semaphore.signal()
    }

    func wait() -> String? {
        semaphore.wait()
        return failure.withLock { $0 }
    }
}

