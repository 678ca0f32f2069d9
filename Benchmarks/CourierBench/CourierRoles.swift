import Courier
import Foundation
import Histogram
import Logging
import Synchronization

/// Courier end to end: sent → delivered → acknowledged by the receiving application →
/// outcome seen by the sender. The roles are async and run on the cooperative pool; only
/// the child's main thread blocks, waiting for them.
enum CourierRoles {
    static let receiverID = "bench-receiver"
    static let senderID = "bench-sender"
    /// The in-flight window of both nodes (set once from the command line).
    static let window = Atomic<Int>(8192)

    static func configuration(id: String, directory: String, durability: Durability) -> NodeConfiguration {
        var configuration = NodeConfiguration(id: id, dataDirectory: directory)
        configuration.durability = durability
        configuration.inFlightWindow = window.load(ordering: .relaxed)
        // Back-pressure at saturation: sends wait for room instead of piling up a backlog.
        configuration.maxSpoolMessages = 100_000
        configuration.maxSpoolBytes = 64 << 20
        configuration.whenSpoolFull = .wait
        var logger = Logger(label: "courier", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        configuration.logger = logger
        return configuration
    }

    /// Listens; acknowledges every message as soon as it is delivered; records the one-way
    /// delivery latency of the latency phase's messages.
    static func receiver(directory: String, durability: Durability, timelineFile: String?, rejectEveryOther: Bool) async throws {
        let stop = StopSignal()
        stop.watchStandardInput()
        var configuration = configuration(id: receiverID, directory: directory, durability: durability)
        configuration.listen = ["tcp://127.0.0.1:*"]
        let capture = SyncCounter.install(SyncCounter.inbound)
        let node = try await Node.start(configuration)
        emitLine("READY \(node.boundEndpoints.first ?? "")")
        let startCPU = ProcessFigures.cpuSeconds()
        let startWrites = ProcessFigures.writeBytes()
        let began = monotonicNanoseconds()
        let consumer = Task { () -> (Int, LatencyHistogram, PhaseSyncs, Timeline) in
            var histogram = makeLatencyHistogram()
            var count = 0
            var syncs = PhaseSyncs()
            var timeline = Timeline()
            for await message in node.messages {
                if let (kind, intended) = Payload.read(message.payload) {
                    if kind == Payload.latency {
                        let latency = monotonicNanoseconds() &- intended
                        _ = histogram.record(latency)
                        if timelineFile != nil { timeline.record(intended: intended, latency: latency) }
                    }
                    syncs.saw(kind, syncs: capture.value)
                }
                if rejectEveryOther && message.sequence % 2 == 0 {
                    message.reject(reason: "the benchmark rejects every other message")
                } else {
                    message.acknowledge()
                }
                count += 1
            }
            return (count, histogram, syncs, timeline)
        }
        while !stop.stopRequested { try await Task.sleep(for: .milliseconds(20)) }
        await node.shutdown()
        let (count, histogram, phaseSyncs, timeline) = await consumer.value
        if let timelineFile { try timeline.write(to: timelineFile) }
        let report = ChildReport(
            role: "courier-receiver", throughput: nil, saturationMessages: nil, latencyRate: nil,
            latencyMessages: nil, latency: nil, deliveryLatency: histogram,
            peakResidentBytes: ProcessFigures.peakResidentBytes(),
            writeBytes: ProcessFigures.writeBytes() - startWrites,
            messages: count, syncs: phaseSyncs.saturationSyncs, syncSeconds: phaseSyncs.saturationSeconds,
            seconds: Double(monotonicNanoseconds() - began) / 1e9, cpuSeconds: ProcessFigures.cpuSeconds() - startCPU)
        emitLine(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
    }

    /// Saturation: `senders` tasks sending batches of `batch` as fast as `send` returns
    /// (the spool's limit pushes back), then waits until every outcome is known; the rate
    /// counts from the first send to the last outcome. Latency: a constant-rate schedule at
    /// half that rate; each message's latency runs from its intended send time to the moment
    /// its outcome (processed) is seen.
    static func sender(endpoint: String, directory: String, durability: Durability, size: Int,
                       saturationSeconds: Double, latencySeconds: Double, rate: Double?,
                       senders: Int, batch: Int, tick: UInt64, pipelined: Bool) async throws {
        let capture = SyncCounter.install(SyncCounter.outbound)
        var configuration = configuration(id: senderID, directory: directory, durability: durability)
        configuration.peers = [PeerConfiguration(id: receiverID, endpoints: [endpoint])]
        let node = try await Node.start(configuration)
        // If this role is still running well after its phases, say where the stream stands
        // (the orchestrator kills a scenario that does not finish).
        let diagnostics = Task {
            try await Task.sleep(for: .seconds(saturationSeconds + latencySeconds + 60))
            if let statistics = node.statistics(for: receiverID) {
                FileHandle.standardError.write(Data("courier-bench sender: still running; \(statistics)\n".utf8))
            }
        }
        defer { diagnostics.cancel() }
        let startCPU = ProcessFigures.cpuSeconds()
        let startWrites = ProcessFigures.writeBytes()
        var warmUp = Payload.make(size: size)
        Payload.stamp(&warmUp, kind: Payload.endOfPhase, intended: 0)
        _ = try await node.send(warmUp, to: receiverID).outcome()
        let syncsBefore = capture.value
        let retransmittedBefore = node.statistics(for: receiverID)?.retransmitted ?? 0

        // Saturation.
        let began = monotonicNanoseconds()
        let deadline = began + UInt64(saturationSeconds * 1e9)
        var payload = Payload.make(size: size)
        Payload.stamp(&payload, kind: Payload.saturation, intended: 0)
        let payloads = [[UInt8]](repeating: payload, count: max(1, batch))
        let sent = pipelined ? try await publishLoop(node: node, payload: payload, until: deadline) : try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<max(1, senders) {
                group.addTask {
                    var count = 0
                    while monotonicNanoseconds() < deadline {
                        _ = try await node.send(batch: payloads, to: receiverID)
                        count += payloads.count
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        try await node.waitUntilDelivered(to: receiverID)
        let saturationEnd = monotonicNanoseconds()
        let throughput = Double(sent) / (Double(saturationEnd - began) / 1e9)
        let saturationSyncs = capture.value - syncsBefore
        let retransmittedAtSaturation = (node.statistics(for: receiverID)?.retransmitted ?? 0) - retransmittedBefore
        try await Task.sleep(for: .milliseconds(200))

        // Latency at a constant rate.
        let latencyRate = rate ?? throughput / 2
        let paced = try await Pacer.run(node: node, size: size, rate: latencyRate, seconds: latencySeconds, tick: tick)
        try await node.waitUntilDelivered(to: receiverID)
        let report = ChildReport(
            role: "courier-sender", throughput: throughput, saturationMessages: sent,
            latencyRate: latencyRate, latencyMessages: paced.count, latency: paced.histogram, deliveryLatency: nil,
            peakResidentBytes: ProcessFigures.peakResidentBytes(),
            writeBytes: ProcessFigures.writeBytes() - startWrites,
            messages: sent + paced.count, syncs: saturationSyncs, syncSeconds: Double(saturationEnd - began) / 1e9,
            seconds: Double(saturationEnd - began) / 1e9, cpuSeconds: ProcessFigures.cpuSeconds() - startCPU,
            retransmittedAtSaturation: retransmittedAtSaturation,
            retransmittedAtLatency: (node.statistics(for: receiverID)?.retransmitted ?? 0) - retransmittedBefore - retransmittedAtSaturation)
        await node.shutdown()
        emitLine(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
    }
}

extension CourierRoles {
    /// The plain loop a user writes: one task, one message per call, through a Publisher
    /// (which writes what accumulates while the previous write syncs); flushed at the end.
    static func publishLoop(node: Node, payload: [UInt8], until deadline: UInt64) async throws -> Int {
        let publisher = node.publisher(to: receiverID)
        var count = 0
        while monotonicNanoseconds() < deadline {
            try await publisher.send(payload)
            count += 1
        }
        try await publisher.flush()
        return count
    }
}

/// Sends on a constant-rate schedule from a thread of its own (so that a slow `send` never
/// delays the schedule): at each wake-up (at most every `tick`: 200 µs unless
/// `--pacing-tick` says otherwise) every message whose time has come goes out in one
/// `send(batch:)` from a new task, which then waits for the batch's outcomes
/// (`[Receipt].outcomes()`) and records, for each message, now − intended time.
/// Coordinated omission is corrected because the intended time, not the actual send time,
/// starts the clock.
enum Pacer {
    struct Result: Sendable {
        var count: Int
        var histogram: LatencyHistogram
    }

    /// What the pacing thread and the tasks it starts share.
    private final class Shared: Sendable {
        let histogram = Mutex(makeLatencyHistogram())
        let finished = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let done = Mutex<CheckedContinuation<Void, Never>?>(nil)
    }

    static func run(node: Node, size: Int, rate: Double, seconds: Double, tick: UInt64) async throws -> Result {
        let shared = Shared()
        let schedule = Schedule(rate: rate, seconds: seconds)
        let template = Payload.make(size: size)
        let receiver = CourierRoles.receiverID
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            shared.done.withLock { $0 = continuation }
            let thread = Thread {
                var index = 0
                while index < schedule.count {
                    let now = monotonicNanoseconds()
                    var intended: [UInt64] = []
                    var payloads: [[UInt8]] = []
                    while index < schedule.count, schedule.time(index) <= now, payloads.count < 1024 {
                        var payload = template
                        Payload.stamp(&payload, kind: Payload.latency, intended: schedule.time(index))
                        payloads.append(payload)
                        intended.append(schedule.time(index))
                        index += 1
                    }
                    if !payloads.isEmpty {
                        let (batch, times) = (payloads, intended)
                        Task {
                            do {
                                let receipts = try await node.send(batch: batch, to: receiver)
                                _ = try await receipts.outcomes()
                                let seen = monotonicNanoseconds()
                                shared.histogram.withLock { histogram in
                                    for time in times { _ = histogram.record(seen &- time) }
                                }
                            } catch {
                                shared.failures.add(1, ordering: .relaxed)
                            }
                            shared.finished.add(batch.count, ordering: .releasing)
                        }
                    }
                    // Wake for the next message, but at most every `tick`: a real application
                    // sending hundreds of thousands a second batches too. The wait counts in
                    // each message's latency (it runs from the intended time).
                    if index < schedule.count {
                        let wake = max(schedule.time(index), now + tick)
                        if wake > monotonicNanoseconds() { sleepUntil(wake) }
                    }
                }
                shared.done.withLock { $0 }?.resume()
            }
            thread.start()
        }
        while shared.finished.load(ordering: .acquiring) < schedule.count {
            try await Task.sleep(for: .milliseconds(5))
        }
        let failures = shared.failures.load(ordering: .relaxed)
        if failures > 0 { fail("\(failures) paced sends failed") }
        return Result(count: schedule.count, histogram: shared.histogram.withLock { $0 })
    }
}

/// The receiver's inbound-journal syncs during the saturation phase: from its first
/// saturation message to (about) its last one, sampled every 256 messages.
struct PhaseSyncs {
    private var start: (syncs: Int, time: UInt64)?
    private var end: (syncs: Int, time: UInt64)?
    private var seen = 0

    mutating func saw(_ kind: UInt8, syncs: @autoclosure () -> Int) {
        guard kind == Payload.saturation else { return }
        seen += 1
        if start == nil {
            start = (syncs(), monotonicNanoseconds())
        } else if seen % 256 == 0 {
            end = (syncs(), monotonicNanoseconds())
        }
    }

    var saturationSyncs: Int? {
        guard let start, let end else { return nil }
        return end.syncs - start.syncs
    }

    var saturationSeconds: Double? {
        guard let start, let end else { return nil }
        return Double(end.time - start.time) / 1e9
    }
}

/// The worst one-way delivery latency per 2 ms of intended send time, over the latency
/// phase (`--timeline`): a stall shows as a run of buckets whose worst latency falls by
/// 2 ms per bucket, the messages queued behind it.
struct Timeline {
    private static let bucket: UInt64 = 2_000_000
    private var worst: [UInt64: UInt64] = [:]

    mutating func record(intended: UInt64, latency: UInt64) {
        let key = intended / Self.bucket
        worst[key] = max(worst[key] ?? 0, latency)
    }

    /// Tab-separated: milliseconds since the first bucket, worst latency in microseconds.
    func write(to path: String) throws {
        let keys = worst.keys.sorted()
        guard let first = keys.first else { return }
        var text = "ms\tworst_latency_us\n"
        for key in keys {
            text += "\((key - first) * Self.bucket / 1_000_000)\t\(worst[key]! / 1000)\n"
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
