// spool-bench: appends per second under each durability policy, records per sync, and
// reopen time and resident memory with 1,000,000 pending records.
//
//   swift build -c release --scratch-path .build-spool --product spool-bench
//   .build-spool/release/spool-bench [--dir /tmp/spool-bench] [--seconds 2] [--pending 1000000]
//
// Prints a Markdown table on standard output; progress on standard error when it is a
// terminal.
import CourierSpool
import Foundation
import Synchronization
import SystemPackage

struct Options {
    var directory = "/tmp/spool-bench"
    var seconds = 2.0
    var pending = 1_000_000
    var reopenOnly: String?
    var baselineDirectory: String?
    var crashWriter: String?

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--dir": directory = iterator.next() ?? directory
            case "--seconds": seconds = Double(iterator.next() ?? "") ?? seconds
            case "--pending": pending = Int(iterator.next() ?? "") ?? pending
            case "--reopen-only": reopenOnly = iterator.next()
            case "--baseline": baselineDirectory = iterator.next()
            case "--crash-writer": crashWriter = iterator.next()
            case "--help", "-h":
                print("usage: spool-bench [--dir PATH] [--seconds S] [--pending N]")
                exit(0)
            default:
                FileHandle.standardError.write(Data("spool-bench: unknown argument \(argument)\n".utf8))
                exit(2)
            }
        }
    }
}

let interactive = isatty(2) == 1
func progress(_ text: String) {
    if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8)) }
}

func residentKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

func fresh(_ path: String) -> FilePath {
    try? FileManager.default.removeItem(atPath: path)
    return FilePath(path)
}

struct Result {
    var policy: String
    var size: Int
    var mode: String
    var appends: Int
    var seconds: Double
    var syncs: Int
    var recordsSynced: Int
}

/// `appenders` tasks, each awaiting its appends one after another, for `seconds`.
func runAwaiting(_ log: OutboundLog, appenders: Int, size: Int, seconds: Double) async throws -> Int {
    let body = [UInt8](repeating: 0x61, count: size)
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    return try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<appenders {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    _ = try await log.append(SpoolEntry(payload: body))
                    count += 1
                }
                return count
            }
        }
        var total = 0
        for try await count in group { total += count }
        return total
    }
}

/// One submitting thread with up to `window` appends in flight (callbacks): how the node's
/// I/O thread uses the log.
func runPipelined(_ log: OutboundLog, window: Int, size: Int, seconds: Double) -> Int {
    let body = [UInt8](repeating: 0x61, count: size)
    let inFlight = DispatchSemaphore(value: window)
    let completed = Atomic<Int>(0)
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    var submitted = 0
    while ContinuousClock.now < deadline {
        inFlight.wait()
        log.append(SpoolEntry(payload: body)) { _ in
            completed.add(1, ordering: .relaxed)
            inFlight.signal()
        }
        submitted += 1
    }
    for _ in 0..<window { inFlight.wait() }
    for _ in 0..<window { inFlight.signal() }  // libdispatch traps on disposing a semaphore below its initial value
    return completed.load(ordering: .relaxed)
}

func appendBenchmarks(_ options: Options) async throws -> [Result] {
    var results: [Result] = []
    let policies: [(String, DurabilityPolicy)] = [
        ("groupCommit", .groupCommit), ("interval(10 ms)", .interval(.milliseconds(10))), ("none", .none),
    ]
    for (name, policy) in policies {
        for size in [100, 1024] {
            for mode in ["1 appender", "16 appenders", "pipelined, 1024 in flight"] {
                progress("appends: \(name), \(size) B, \(mode)")
                var configuration = SpoolConfiguration()
                configuration.durability = policy
                // Nothing is ever acknowledged here: without these, a fast row fills the
                // default 1 GiB limit and its appends wait for space forever.
                configuration.maxPendingBytes = .max
                configuration.maxPendingMessages = .max
                let directory = try DataDirectory(path: fresh(options.directory + "/appends"), configuration: configuration)
                let log = try await directory.outboundLog(for: "bench")
                let start = ContinuousClock.now
                let count: Int
                switch mode {
                case "1 appender": count = try await runAwaiting(log, appenders: 1, size: size, seconds: options.seconds)
                case "16 appenders": count = try await runAwaiting(log, appenders: 16, size: size, seconds: options.seconds)
                default:
                    count = await withCheckedContinuation { continuation in
                        Thread.detachNewThread {
                            continuation.resume(returning: runPipelined(log, window: 1024, size: size, seconds: options.seconds))
                        }
                    }
                }
                let elapsed = ContinuousClock.now - start
                let status = log.status
                directory.close()
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                results.append(Result(policy: name, size: size, mode: mode, appends: count, seconds: seconds, syncs: status.syncs, recordsSynced: status.appendsCompleted))
            }
        }
    }
    return results
}

/// Fills a spool with `count` pending records of 100 bytes (batches, no fsync).
func fill(_ path: String, count: Int) throws {
    var configuration = SpoolConfiguration()
    configuration.durability = .none
    let directory = try DataDirectory(path: fresh(path), configuration: configuration)
    let log = try directory.outboundLog(for: "offline-peer")
    let batch = (0..<1000).map { _ in SpoolEntry(payload: [UInt8](repeating: 0x62, count: 100)) }
    var written = 0
    while written < count {
        let n = min(1000, count - written)
        _ = try log.appendAndWait(contentsOf: Array(batch.prefix(n)))
        written += n
        if written % 50_000 == 0 { progress("filling: \(written) / \(count)") }
    }
    try log.acknowledge(upTo: 0)
    directory.close()
}

/// In a fresh process: open an empty spool (baseline), then the full one; report.
func reopenOnly(_ path: String, baseline: String) throws {
    let empty = try DataDirectory(path: fresh(baseline))
    _ = try empty.outboundLog(for: "offline-peer")
    let before = residentKiB()
    let start = ContinuousClock.now
    let directory = try DataDirectory(path: FilePath(path))
    let log = try directory.outboundLog(for: "offline-peer")
    let elapsed = ContinuousClock.now - start
    let after = residentKiB()
    let firstBatch = try log.readPending(from: 0, limit: 1000)
    let readRSS = residentKiB()
    let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    print("\(log.status.pendingCount) \(milliseconds) \(before) \(after) \(readRSS) \(firstBatch.count)")
    directory.close()
    empty.close()
}

/// For the crash test (CourierSpoolTests): appends forever under group commit, payload
/// "p-<sequence number>", printing each sequence number once its append has completed.
/// The test kills it with SIGKILL at an arbitrary moment and checks what survived.
func crashWriter(_ path: String) throws -> Never {
    let directory = try DataDirectory(path: FilePath(path))
    let log = try directory.outboundLog(for: "crash-peer")
    let inFlight = DispatchSemaphore(value: 64)
    var next = log.nextSequenceNumber
    while true {
        inFlight.wait()
        log.append(SpoolEntry(payload: Array("p-\(next)".utf8))) { result in
            if case .success(let sequence) = result {
                FileHandle.standardOutput.write(Data("\(sequence)\n".utf8))  // unbuffered: a kill loses no line
            }
            inFlight.signal()
        }
        next += 1
    }
}

let options = Options(CommandLine.arguments)
if let path = options.crashWriter { try crashWriter(path) }
if let path = options.reopenOnly {
    try reopenOnly(path, baseline: options.baselineDirectory ?? path + "-baseline")
    exit(0)
}

try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
let results = try await appendBenchmarks(options)
print("### Appends per second (\(options.seconds) s per row)\n")
print("| policy | record payload | appenders | appends/s | syncs | records per sync |")
print("| --- | ---: | --- | ---: | ---: | ---: |")
for r in results {
    let perSync = r.syncs > 0 ? String(format: "%.1f", Double(r.recordsSynced) / Double(r.syncs)) : "–"
    print("| \(r.policy) | \(r.size) B | \(r.mode) | \(Int(Double(r.appends) / r.seconds)) | \(r.syncs) | \(perSync) |")
}

progress("filling \(options.pending) records")
let full = options.directory + "/pending"
try fill(full, count: options.pending)
var rows: [String] = []
for cache in ["warm page cache", "cold page cache (drop_caches)"] {
    if cache.hasPrefix("cold") {
        guard getuid() == 0, FileManager.default.isWritableFile(atPath: "/proc/sys/vm/drop_caches") else { continue }
        sync()
        try? "3\n".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)
    }
    progress("reopening (\(cache))")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = ["--reopen-only", full, "--baseline", options.directory + "/empty"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let fields = output.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
    guard fields.count == 6 else { continue }
    let added = (Int(fields[3]) ?? 0) - (Int(fields[2]) ?? 0)
    let afterRead = (Int(fields[4]) ?? 0) - (Int(fields[2]) ?? 0)
    rows.append("| \(cache) | \(fields[0]) | \(String(format: "%.0f", Double(fields[1]) ?? 0)) ms | \(String(format: "%.1f", Double(added) / 1024)) MiB | \(String(format: "%.1f", Double(afterRead) / 1024)) MiB |")
}
progress("")
print("\n### Reopen with \(options.pending) pending records of 100 bytes\n")
print("| cache | pending | reopen time | RSS added by the open spool | RSS added after reading 1,000 records |")
print("| --- | ---: | ---: | ---: | ---: |")
for row in rows { print(row) }
try? FileManager.default.removeItem(atPath: options.directory)
