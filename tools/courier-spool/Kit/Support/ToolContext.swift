import CourierSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a command's output goes: a file descriptor for the real program, a buffer in tests.
public struct ToolOutput: Sendable {
    /// Writes every byte; returns false when the output is closed or broken.
    let write: @Sendable ([UInt8]) -> Bool
    /// Whether it is a terminal (progress is drawn only on one).
    public let isTerminal: Bool

    public init(isTerminal: Bool, write: @escaping @Sendable ([UInt8]) -> Bool) {
        self.isTerminal = isTerminal
        self.write = write
    }

    /// A file descriptor, written unbuffered (each call is one `write(2)`).
    public static func descriptor(_ descriptor: Int32) -> ToolOutput {
        ToolOutput(isTerminal: isatty(descriptor) == 1) { writeAll($0, to: descriptor) }
    }

    @discardableResult
    func write(_ text: String) -> Bool { write(Array(text.utf8)) }
}

/// An output that keeps what is written, for tests.
public final class CapturedOutput: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    private let terminal: Bool

    public init(isTerminal: Bool = false) { terminal = isTerminal }

    public var output: ToolOutput {
        ToolOutput(isTerminal: terminal) { [self] written in
            bytes.withLock { $0 += written }
            return true
        }
    }

    /// Everything written so far.
    public var data: [UInt8] { bytes.withLock { $0 } }
    /// Everything written so far, as text.
    public var text: String { String(decoding: data, as: UTF8.self) }
}

/// What a command may use from its surroundings: its outputs and the clock. The program
/// passes the process's; tests pass buffers and a fixed time, so output is reproducible.
public struct ToolContext: Sendable {
    public var standardOutput: ToolOutput
    public var standardError: ToolOutput
    /// The current time in nanoseconds since the Unix epoch (ages are measured from it).
    public var now: @Sendable () -> Int64
    /// Spools at least this large get a progress line during `verify` (on a terminal).
    public var progressThreshold: Int64

    public init(
        standardOutput: ToolOutput, standardError: ToolOutput,
        now: @escaping @Sendable () -> Int64 = ToolContext.wallClock, progressThreshold: Int64 = 64 << 20
    ) {
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.now = now
        self.progressThreshold = progressThreshold
    }

    /// The process's standard output and error and the system clock.
    public static var process: ToolContext {
        ToolContext(standardOutput: .descriptor(STDOUT_FILENO), standardError: .descriptor(STDERR_FILENO))
    }

    /// The system's wall clock in nanoseconds since the Unix epoch.
    public static let wallClock: @Sendable () -> Int64 = {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
