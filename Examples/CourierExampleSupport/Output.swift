import CourierSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to a file descriptor: each call is one `write(2)` (retried on a short
/// write or EINTR), so a line is out of the process when the call returns. The example
/// programs use it for their per-line output, which must be flushed before they go on.
public struct OutputStream: Sendable {
    public let descriptor: Int32

    public static let standardOutput = OutputStream(descriptor: 1)
    public static let standardError = OutputStream(descriptor: 2)

    /// Whether the descriptor is a terminal (progress is only drawn on one).
    public var isTerminal: Bool { isatty(descriptor) == 1 }

    /// Writes every byte; returns false if the descriptor is closed or broken.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool { writeAll(bytes, to: descriptor) }

    @discardableResult
    public func write(_ text: String) -> Bool { write(Array(text.utf8)) }
}

/// Prints one line on standard error, prefixed with the program's name.
public func complain(_ program: String, _ message: String) {
    OutputStream.standardError.write("\(program): \(message)\n")
}
