import CourierSystem
import SystemPackage

/// An error from the spool: what went wrong, where, and what to do about it.
///
/// Modelled on NIOFS's `FileSystemError`: a ``code`` to switch on, the `errno` and the
/// failing system call when the operating system reported the problem, the file concerned,
/// the underlying error (``cause``) when another error led to this one, where in the spool
/// it was raised (``location``), and a readable ``description`` that says what to do.
package struct SpoolError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. An open set: more codes may be added.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A file operation failed (see ``SpoolError/errno`` and ``SpoolError/systemCall``).
        package static let io = Code(name: "io")
        /// The file system is full (`ENOSPC`) or over quota (`EDQUOT`). Nothing already
        /// durable was harmed; free space and append again.
        package static let storageFull = Code(name: "storageFull")
        /// The per-peer limit (``SpoolConfiguration/maxPendingBytes`` or
        /// ``SpoolConfiguration/maxPendingMessages``) is reached and the configuration says
        /// to fail rather than wait.
        package static let spoolFull = Code(name: "spoolFull")
        /// Another process (or another open in this process) holds the data directory lock.
        /// ``SpoolError/holderPID`` names it when the lock file says.
        package static let locked = Code(name: "locked")
        /// Data on disk failed its checksum or had an impossible layout.
        package static let corruption = Code(name: "corruption")
        /// The task awaiting an append was cancelled while the append was still queued;
        /// nothing was written.
        package static let cancelled = Code(name: "cancelled")
        /// The spool was closed.
        package static let closed = Code(name: "closed")
        /// An argument was out of range (an empty or over-long peer id, an acknowledgement
        /// beyond the last durable sequence number, …).
        package static let invalidArgument = Code(name: "invalidArgument")
        /// A record is larger than ``SpoolConfiguration/maxRecordSize``, or larger than the
        /// per-peer limits could ever admit.
        package static let recordTooLarge = Code(name: "recordTooLarge")
        /// The thing asked for does not exist (a peer directory, a dead letter, …).
        package static let notFound = Code(name: "notFound")
        /// A file was written by a newer or unknown format version.
        package static let unsupportedVersion = Code(name: "unsupportedVersion")
        /// Too many out-of-order processed numbers above an inbound stream's contiguous mark.
        package static let tooManyOutOfOrder = Code(name: "tooManyOutOfOrder")

        package var description: String { name }
    }

    /// The kind of failure.
    package var code: Code
    /// What happened, in words, with the remedy where there is one.
    package var message: String
    /// The file concerned, when there is one.
    package var path: FilePath?
    /// The failing system call (`"write"`, `"fdatasync"`, `"flock"`, …), when there is one.
    package var systemCall: String?
    /// The operating system's error, when there is one.
    package var errno: Errno?
    /// For ``Code/locked``: the process id recorded by the current holder of the lock.
    package var holderPID: Int32?
    /// The error that led to this one, when it was not the operating system's `errno` alone
    /// (a thread that could not start, an error from another layer).
    package var cause: (any Error)?
    /// Where in the spool the error was raised.
    package var location: SourceLocation

    /// A place in the source, as NIOFS's `FileSystemError.SourceLocation`.
    package struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
        package var function: String
        package var file: String
        package var line: Int

        package init(function: String, file: String, line: Int) {
            self.function = function
            self.file = file
            self.line = line
        }

        package var description: String { "\(function) (\(file):\(line))" }
    }

    /// Creates an error; the location defaults to the caller's.
    package init(
        code: Code,
        message: String,
        path: FilePath? = nil,
        systemCall: String? = nil,
        errno: Errno? = nil,
        holderPID: Int32? = nil,
        cause: (any Error)? = nil,
        function: String = #function,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.systemCall = systemCall
        self.errno = errno
        self.holderPID = holderPID
        self.cause = cause
        self.location = SourceLocation(function: function, file: file, line: line)
    }

    package var description: String {
        var text = "SpoolError.\(code): \(message)"
        if let systemCall { text += " [\(systemCall)" + (errno.map { " failed: \($0) (errno \($0.rawValue))" } ?? "") + "]" }
        if let path { text += " (file: \(path))" }
        if let cause { text += " (cause: \(cause))" }
        return text
    }

    /// ``description`` and where the error was raised, for logs and bug reports.
    package var detailedDescription: String { "\(description) at \(location)" }

    /// Wraps an `Errno` from a failing call on `path`, choosing ``Code/storageFull`` for
    /// `ENOSPC`/`EDQUOT`.
    static func system(
        _ call: String, _ errno: Errno, path: FilePath?, doing what: String,
        function: String = #function, file: String = #fileID, line: Int = #line
    ) -> SpoolError {
        let full = errno == .noSpace || errno == .diskQuotaExceeded
        return SpoolError(
            code: full ? .storageFull : .io,
            message: full
                ? "\(what): the file system is full; records already durable are intact, appends resume once space is freed"
                : "\(what) failed",
            path: path,
            systemCall: call,
            errno: errno,
            function: function, file: file, line: line
        )
    }

    /// Wraps any error from a call on `path`: a `SpoolError` as it is, an `Errno` as
    /// ``system(_:_:path:doing:function:file:line:)`` does, anything else as the ``cause``
    /// of an ``Code/io`` error.
    static func from(
        _ error: any Error, call: String, path: FilePath?, doing what: String,
        function: String = #function, file: String = #fileID, line: Int = #line
    ) -> SpoolError {
        if let spool = error as? SpoolError { return spool }
        if let errno = error as? Errno { return .system(call, errno, path: path, doing: what, function: function, file: file, line: line) }
        return SpoolError(
            code: .io, message: "\(what) failed: \(error)", path: path, systemCall: call,
            cause: error, function: function, file: file, line: line
        )
    }

    /// A spool thread that could not start (`pthread_create` failed), while `what`.
    static func threadStart(
        _ error: OSThread.StartError, doing what: String,
        function: String = #function, file: String = #fileID, line: Int = #line
    ) -> SpoolError {
        outOfResources("\(what): cannot start the thread \(error.name); the process is out of threads or memory",
                       call: "pthread_create", errno: error.errno, cause: error, at: SourceLocation(function: function, file: file, line: line))
    }

    /// A wake-up descriptor that could not be made (`eventfd` failed), while `what`.
    static func wakeEvent(
        _ error: WakeEvent.CreateError, doing what: String,
        function: String = #function, file: String = #fileID, line: Int = #line
    ) -> SpoolError {
        outOfResources("\(what): cannot make a wake-up descriptor; the process is out of file descriptors or memory",
                       call: "eventfd", errno: error.errno, cause: error, at: SourceLocation(function: function, file: file, line: line))
    }

    private static func outOfResources(_ message: String, call: String, errno: Int32, cause: any Error, at location: SourceLocation) -> SpoolError {
        SpoolError(
            code: .io, message: message, systemCall: call, errno: Errno(rawValue: errno), cause: cause,
            function: location.function, file: location.file, line: location.line
        )
    }

    static let closedError = SpoolError(code: .closed, message: "the spool is closed; open the data directory again")
}
