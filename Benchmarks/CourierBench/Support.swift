import Foundation
import Histogram
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on `CLOCK_MONOTONIC`, which Linux shares between processes: a time taken in
/// the sender can be compared with one taken in the receiver.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Sleeps the calling thread until `deadline` (monotonic nanoseconds). Only for the
/// benchmark's own threads, never a task.
func sleepUntil(_ deadline: UInt64) {
    var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &spec, nil) == EINTR {}
}

/// A latency histogram in nanoseconds, 1 ns … 100 s, three significant digits.
typealias LatencyHistogram = Histogram<UInt64>

func makeLatencyHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
}

/// The benchmark payload: byte 0 says what it is, bytes 1…8 carry the intended send time
/// (monotonic ns, little-endian) of a constant-rate schedule; the rest is filler.
enum Payload {
    static let saturation: UInt8 = 0
    static let latency: UInt8 = 1
    static let endOfPhase: UInt8 = 2
    static let minimumSize = 9

    static func make(size: Int) -> [UInt8] {
        [UInt8](repeating: 0x61, count: max(size, minimumSize))
    }

    @inline(__always)
    static func stamp(_ payload: inout [UInt8], kind: UInt8, intended: UInt64) {
        payload[0] = kind
        withUnsafeBytes(of: intended.littleEndian) { raw in
            for i in 0..<8 { payload[1 + i] = raw[i] }
        }
    }

    @inline(__always)
    static func read(_ payload: [UInt8]) -> (kind: UInt8, intended: UInt64)? {
        guard payload.count >= minimumSize else { return nil }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(payload[1 + i]) << (8 * UInt64(i)) }
        return (payload[0], value)
    }
}

/// Figures of the calling process from /proc.
enum ProcessFigures {
    /// Peak resident set size (`VmHWM`), bytes.
    static func peakResidentBytes() -> Int64 { statusField("VmHWM:") * 1024 }

    /// Current resident set size (`VmRSS`), bytes.
    static func residentBytes() -> Int64 { statusField("VmRSS:") * 1024 }

    /// Bytes this process caused to be written to storage (`/proc/self/io` `write_bytes`).
    static func writeBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("write_bytes:") {
            return Int64(line.split(separator: " ").last ?? "0") ?? 0
        }
        return 0
    }

    /// User + system CPU time of this process, seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    private static func statusField(_ name: String) -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return Int64(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}

/// Progress on standard error, only when it is a terminal.
enum Progress {
    static let interactive = isatty(2) == 1

    static func show(_ text: String) {
        guard interactive else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
    }

    static func done() {
        guard interactive else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// Writes one line to standard output at once (the parent reads it through a pipe).
func emitLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("courier-bench: \(message)\n".utf8))
    exit(1)
}

/// Reads lines from standard input on a thread of its own; `stopRequested` turns true at
/// "stop" or end of input.
final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)

    var stopRequested: Bool { flag.load(ordering: .acquiring) }

    func watchStandardInput() {
        let thread = Thread { [self] in
            while let line = readLine() {
                if line == "stop" { break }
            }
            flag.store(true, ordering: .releasing)
        }
        thread.start()
    }
}

/// The figures a child process reports to the parent, as one JSON line.
struct ChildReport: Codable, Sendable {
    var role: String
    /// Messages per second at saturation (sender: end to end; baseline receiver: received).
    var throughput: Double?
    var saturationMessages: Int?
    /// The constant rate of the latency phase, messages per second.
    var latencyRate: Double?
    var latencyMessages: Int?
    /// Latency from the intended send time (coordinated omission corrected).
    var latency: LatencyHistogram?
    /// Courier only: from the intended send time to the delivery to the receiving
    /// application (one way), measured in the receiver.
    var deliveryLatency: LatencyHistogram?
    var peakResidentBytes: Int64
    var writeBytes: Int64
    var messages: Int
    /// Spool syncs during the saturation phase (sender: its outbound spool; Courier receiver:
    /// its inbound journal), counted over `syncSeconds`.
    var syncs: Int?
    var syncSeconds: Double? = nil
    var seconds: Double
    var cpuSeconds: Double
    /// Courier sender: copies it sent again (after a retransmission timeout, or resending
    /// from the first unacknowledged number after a reconnection), during the saturation
    /// phase and during the latency phase.
    var retransmittedAtSaturation: Int? = nil
    var retransmittedAtLatency: Int? = nil
}
