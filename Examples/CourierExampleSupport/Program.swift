public import ArgumentParser
public import Courier
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exit codes shared by the example programs (SPEC §5: a usage error is 2, as for `grep`).
public enum ExitStatus {
    public static let success: Int32 = 0
    /// A failure while running: a rejected message, a locked data directory, a storage error.
    public static let failure: Int32 = 1
    /// A bad flag, a bad endpoint, an unusable configuration.
    public static let usage: Int32 = 2
}

/// Runs an example program: parses its command line and validates it (a usage error is one
/// line on standard error and exit code 2, not ArgumentParser's 64 and a usage screen),
/// answers `--help`, then runs the command and exits with its code.
///
/// `run()` ends the program by throwing `ExitCode` (or returning, for exit code 0).
public func runProgram<Command: AsyncParsableCommand>(_ type: Command.Type, program: String) async -> Never {
    signal(SIGPIPE, SIG_IGN)   // a closed output is reported by the write, not by a signal
    var command: Command
    do {
        command = try Command.parse()
    } catch {
        if Command.exitCode(for: error) == .success {
            OutputStream.standardOutput.write(Command.fullMessage(for: error) + "\n")
            exit(ExitStatus.success)
        }
        let message = Command.message(for: error)
            .split(whereSeparator: \.isNewline).first.map(String.init) ?? "invalid command line"
        complain(program, "\(message) (see --help)")
        exit(ExitStatus.usage)
    }
    do {
        try await command.run()
        exit(ExitStatus.success)
    } catch let code as ExitCode {
        exit(code.rawValue)
    } catch {
        complain(program, "\(error)")
        exit(ExitStatus.failure)
    }
}

/// Sends swift-log output to standard error, so that standard output holds only the
/// program's data: warnings and errors by default, `info` with `--verbose`.
public func bootstrapLogging(verbose: Bool) -> Logger.Level {
    let level: Logger.Level = verbose ? .info : .warning
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return level
}

/// Starts a node, turning a failure into one line on standard error and the exit code the
/// programs promise: 2 for an unusable configuration, 1 for anything else (a locked data
/// directory names its holder in the message). `detailed` adds the underlying error.
public func startNode(_ configuration: NodeConfiguration, program: String, detailed: Bool) async -> Result<Node, StartFailure> {
    do {
        return .success(try await Node.start(configuration))
    } catch {
        complain(program, "cannot start: \(detailed ? error.description : error.message)")
        return .failure(StartFailure(status: error.code == .invalidConfiguration ? ExitStatus.usage : ExitStatus.failure))
    }
}

/// A node that did not start; ``status`` is the exit code to leave with.
public struct StartFailure: Error {
    public var status: Int32
}

/// Parses a duration in seconds, such as `30` or `0.5`.
public func duration(seconds text: String) -> Duration? {
    guard let value = Double(text), value.isFinite, value >= 0 else { return nil }
    return .milliseconds(Int64((value * 1000).rounded()))
}
