import Foundation
import Histogram
import ZeroMQ

/// The baseline: raw ZeroMQ DEALER → ROUTER through the ZeroMQ module, no persistence, no
/// acknowledgements. Both roles run on the child's main thread and may block.
enum BaselineRoles {
    /// Binds a ROUTER, says where, and counts what arrives until the parent says stop.
    /// Throughput is measured here (what arrived), latency one way from the intended send
    /// time carried in each payload.
    static func receiver() throws {
        let stop = StopSignal()
        stop.watchStandardInput()
        let context = try Context()
        let router = try Socket(.router, context: context)
        try router.set(.receiveTimeout, .milliseconds(50))
        try router.bind("tcp://127.0.0.1:*")
        emitLine("READY \(try router.lastEndpoint() ?? "")")
        let startCPU = ProcessFigures.cpuSeconds()
        let startWrites = ProcessFigures.writeBytes()
        var histogram = makeLatencyHistogram()
        var saturationCount = 0
        var saturationFirst: UInt64 = 0
        var saturationLast: UInt64 = 0
        var latencyCount = 0
        let began = monotonicNanoseconds()
        while !stop.stopRequested {
            guard let message = try receive(router) else { continue }
            let now = monotonicNanoseconds()
            guard message.frames.count == 2, let (kind, intended) = Payload.read(message.frames[1]) else { continue }
            switch kind {
            case Payload.saturation:
                if saturationCount == 0 { saturationFirst = now }
                saturationCount += 1
                saturationLast = now
            case Payload.latency:
                latencyCount += 1
                _ = histogram.record(now &- intended)
            default:
                break
            }
        }
        let elapsed = Double(saturationLast &- saturationFirst) / 1e9
        let report = ChildReport(
            role: "baseline-receiver",
            throughput: elapsed > 0 ? Double(saturationCount - 1) / elapsed : nil,
            saturationMessages: saturationCount, latencyRate: nil, latencyMessages: latencyCount,
            latency: histogram, deliveryLatency: nil,
            peakResidentBytes: ProcessFigures.peakResidentBytes(),
            writeBytes: ProcessFigures.writeBytes() - startWrites,
            messages: saturationCount + latencyCount, syncs: nil,
            seconds: Double(monotonicNanoseconds() - began) / 1e9, cpuSeconds: ProcessFigures.cpuSeconds() - startCPU)
        router.close()
        emitLine(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
    }

    /// A message, or nil when the receive timeout passed first.
    private static func receive(_ socket: Socket) throws(ZeroMQError) -> Message? {
        do {
            return try socket.receive()
        } catch {
            if error.code == .wouldBlock { return nil }
            throw error
        }
    }

    /// Connects a DEALER; sends as fast as the socket takes messages for the saturation
    /// phase, then at a constant rate (half the rate it managed, or `rate`) for the latency phase.
    static func sender(endpoint: String, size: Int, saturationSeconds: Double, latencySeconds: Double, rate: Double?) throws {
        let context = try Context()
        let dealer = try Socket(.dealer, context: context)
        try dealer.set(.routingID, Array("bench-sender".utf8))
        try dealer.connect(endpoint)
        let startCPU = ProcessFigures.cpuSeconds()
        let startWrites = ProcessFigures.writeBytes()
        var payload = Payload.make(size: size)
        // Let the connection come up before the clock starts.
        Payload.stamp(&payload, kind: Payload.endOfPhase, intended: monotonicNanoseconds())
        try dealer.send([payload])
        sleepUntil(monotonicNanoseconds() + 200_000_000)

        let began = monotonicNanoseconds()
        let deadline = began + UInt64(saturationSeconds * 1e9)
        var sent = 0
        while monotonicNanoseconds() < deadline {
            for _ in 0..<64 {
                Payload.stamp(&payload, kind: Payload.saturation, intended: 0)
                try dealer.send([payload])
            }
            sent += 64
        }
        let sendRate = Double(sent) / (Double(monotonicNanoseconds() - began) / 1e9)
        // Let the receiver's queues drain before the latency phase.
        sleepUntil(monotonicNanoseconds() + 300_000_000)

        let latencyRate = rate ?? sendRate / 2
        let schedule = Schedule(rate: latencyRate, seconds: latencySeconds)
        var index = 0
        while index < schedule.count {
            let now = monotonicNanoseconds()
            // Everything whose time has come goes now; a late message keeps its intended time.
            while index < schedule.count, schedule.time(index) <= now {
                Payload.stamp(&payload, kind: Payload.latency, intended: schedule.time(index))
                try dealer.send([payload])
                index += 1
            }
            if index < schedule.count { sleepUntil(schedule.time(index)) }
        }
        sleepUntil(monotonicNanoseconds() + 200_000_000)
        let report = ChildReport(
            role: "baseline-sender", throughput: sendRate, saturationMessages: sent,
            latencyRate: latencyRate, latencyMessages: schedule.count, latency: nil, deliveryLatency: nil,
            peakResidentBytes: ProcessFigures.peakResidentBytes(),
            writeBytes: ProcessFigures.writeBytes() - startWrites,
            messages: sent + schedule.count, syncs: nil,
            seconds: Double(monotonicNanoseconds() - began) / 1e9, cpuSeconds: ProcessFigures.cpuSeconds() - startCPU)
        dealer.close(linger: .upTo(.seconds(2)))
        emitLine(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
    }
}

/// A constant-rate schedule: message `i` is due at `start + i / rate`.
struct Schedule {
    let start: UInt64
    let interval: Double
    let count: Int

    init(rate: Double, seconds: Double) {
        let rate = max(rate, 1)
        start = monotonicNanoseconds() + 10_000_000
        interval = 1e9 / rate
        count = max(1, Int(rate * seconds))
    }

    @inline(__always)
    func time(_ index: Int) -> UInt64 { start + UInt64(Double(index) * interval) }
}
