import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The example programs, as built next to this test bundle (`swift build --build-tests`
/// builds them), or in `COURIER_BIN_DIR`.
enum Programs {
    static let directory: String = {
        if let override = ProcessInfo.processInfo.environment["COURIER_BIN_DIR"] { return override }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // macOS runs tests from inside an .xctest bundle: climb out of it.
        while url.pathComponents.contains(where: { $0.hasSuffix(".xctest") }), url.pathComponents.count > 1,
              !FileManager.default.isExecutableFile(atPath: url.deletingLastPathComponent().appendingPathComponent("courier-producer").path) {
            url.deleteLastPathComponent()
        }
        return url.deletingLastPathComponent().path
    }()

    static func path(_ name: String) throws -> String {
        let path = directory + "/" + name
        try #require(FileManager.default.isExecutableFile(atPath: path),
                     "\(name) is not built in \(directory); run swift build --build-tests (or set COURIER_BIN_DIR)")
        return path
    }
}

/// A scratch directory for one test, removed at the end unless the test failed (so that
/// outputs can be read), and the files the programs read and write in it.
struct Workspace {
    let path: String

    init(_ name: String) {
        path = NSTemporaryDirectory() + "courier-it-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Creates (or empties) a file and returns its path.
    @discardableResult
    func create(_ name: String, contents: String = "") -> String {
        let path = file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
        return path
    }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: file(name), encoding: .utf8)) ?? ""
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A child process: one of the example programs, with its standard streams on files.
final class Child: @unchecked Sendable {
    // Process is not Sendable; a Child is only used from the test's own task.
    private let process = Process()
    let name: String

    /// Starts `program` (one of the built programs) with `arguments`. With
    /// `softDescriptorLimit`, it starts under that soft limit on open files (through
    /// `sh -c 'ulimit -Sn N; exec …'`), as from a shell with Debian's default of 1,024.
    init(_ program: String, _ arguments: [String], stdin: String? = nil, stdout: String, stderr: String,
         softDescriptorLimit: Int? = nil) throws {
        name = program
        if let softDescriptorLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -Sn \(softDescriptorLimit) && exec \"$0\" \"$@\"", try Programs.path(program)] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: try Programs.path(program))
            process.arguments = arguments
        }
        process.standardInput = try stdin.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        try process.run()
    }

    /// A test that ends early (a failed wait throws) leaves no program running behind it.
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits for the process to end and returns its exit code (128 + n if killed by signal n).
    func exitCode(within limit: Duration) async throws -> Int32 {
        try await poll(within: limit, "\(name) (pid \(pid)) to exit") { !self.process.isRunning }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// Kills the process with SIGKILL and waits until it is gone.
    func kill9() async throws {
        signal(SIGKILL)
        _ = try await exitCode(within: .seconds(10))
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` every 20 ms until it holds; throws once `limit` has passed.
func poll(within limit: Duration, _ what: String, _ condition: () throws -> Bool) async throws {
    let end = ContinuousClock.now + limit
    while try !condition() {
        guard ContinuousClock.now < end else { throw DeadlineExceeded(description: "waited \(limit) for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// One line of the consumer's output.
struct Delivered: Equatable {
    var from: String
    var stream: String
    var seq: Int
    var redelivered: Bool
    var attempt: Int
    var payload: String
    var rejected: Bool
}

/// Parses the consumer's output: complete lines only (a consumer killed mid-write may leave
/// a partial last line; that message was not acknowledged, so it comes again).
func parseDelivered(_ text: String) throws -> [Delivered] {
    try completeLines(text).map { line in
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                                  "not a JSON object: \(line)")
        return Delivered(
            from: try #require(object["from"] as? String, "no from in \(line)"),
            stream: try #require(object["stream"] as? String, "no stream in \(line)"),
            seq: try #require(object["seq"] as? Int, "no seq in \(line)"),
            redelivered: try #require(object["redelivered"] as? Bool, "no redelivered in \(line)"),
            attempt: try #require(object["attempt"] as? Int, "no attempt in \(line)"),
            payload: try #require(object["payload"] as? String, "no payload in \(line)"),
            rejected: object["rejected"] as? Bool ?? false)
    }
}

/// The lines of `text` that end in a newline.
func completeLines(_ text: String) -> [String] {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines.removeLast()   // after the last newline: empty, or a torn line
    return lines
}
