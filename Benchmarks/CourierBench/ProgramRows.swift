import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The programs rows: `courier-producer --count N --size S --wait` into
/// `courier-consumer > /dev/null` over loopback, as a user first meets Courier's speed. The
/// rate counts from the producer's start to its exit (its node's start, the sends, and the
/// wait until every outcome is in, summary included).
extension Orchestrator {
    func runPrograms(_ system: BenchSystem, size: Int) throws -> Scenario {
        guard let programs else { throw BenchError("the programs rows need --programs DIR") }
        let directory = "\(dataDirectory)/\(system.rawValue)-\(size)"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let endpoint = "tcp://127.0.0.1:\(try Self.freePort())"
        var consumerArguments = ["--id", "bench-consumer", "--data-dir", directory + "/consumer", "--listen", endpoint]
        let rejecting = system == .programsRejecting
        // Generated payloads are "P-n" padded with dots: every even n is rejected.
        if rejecting { consumerArguments += ["--reject-matching", "^P-[0-9]*[02468][.]"] }
        let consumer = try Self.launch(programs + "/courier-consumer", consumerArguments, stderr: directory + "/consumer.err")
        defer {
            if consumer.isRunning { consumer.terminate() }
            consumer.waitUntilExit()
        }
        // The producer's connection is retried until the consumer listens; a head start
        // keeps that retry out of the figure.
        Thread.sleep(forTimeInterval: 0.5)
        let began = monotonicNanoseconds()
        let producer = try Self.launch(programs + "/courier-producer", [
            "--id", "P", "--data-dir", directory + "/producer", "--peer", "bench-consumer=\(endpoint)",
            "--count", "\(programCount)", "--size", "\(size)", "--wait"], stderr: directory + "/producer.err")
        let limit = DispatchTime.now() + .seconds(Int(120 + Double(programCount) / 10_000))
        let watchdog = DispatchWorkItem { if producer.isRunning { producer.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: limit, execute: watchdog)
        producer.waitUntilExit()
        watchdog.cancel()
        let seconds = Double(monotonicNanoseconds() - began) / 1e9
        let summary = (try? String(contentsOfFile: directory + "/producer.err", encoding: .utf8)) ?? ""
        let expected = rejecting
            ? "\(programCount - programCount / 2) processed, \(programCount / 2) rejected"
            : "\(programCount) processed, 0 rejected"
        guard summary.contains(expected) else {
            throw BenchError("\(system.label): the producer (exit \(producer.terminationStatus)) did not report \"\(expected)\": \(summary.suffix(400)); data kept in \(directory)")
        }
        try? FileManager.default.removeItem(atPath: directory)
        let report = ChildReport(role: system.rawValue, throughput: Double(programCount) / seconds, saturationMessages: programCount,
                                 latencyRate: nil, latencyMessages: nil, latency: nil, deliveryLatency: nil,
                                 peakResidentBytes: 0, writeBytes: 0, messages: programCount, syncs: nil,
                                 seconds: seconds, cpuSeconds: 0)
        return Scenario(system: system, size: size, sender: report, receiver: report)
    }

    private static func launch(_ executable: String, _ arguments: [String], stderr: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: stderr)
        try process.run()
        return process
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Glibc.bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw BenchError("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
