import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from libzmq or from this layer's own checks.
///
/// Carries the `errno`, libzmq's own message for it, the call that failed and what it
/// failed on (an endpoint, an option), so a log line says what to do. Compare ``code``
/// to tell the common cases apart:
///
/// ```swift
/// do { try socket.bind("tcp://127.0.0.1:5555") }
/// catch where error.code == .addressInUse { … }
/// ```
public struct ZeroMQError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. An open set: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, such as `wouldBlock`.
        public let description: String
        private init(_ name: String) { description = name }

        /// A non-blocking call could not proceed now (`EAGAIN`), or a timeout passed.
        public static let wouldBlock = Code("wouldBlock")
        /// The context was shut down or terminated (`ETERM`); close the socket.
        public static let terminated = Code("terminated")
        /// A ROUTER with `routerMandatory` has no connected peer with that routing id.
        public static let hostUnreachable = Code("hostUnreachable")
        /// An endpoint string that libzmq cannot use (bad syntax, port or interface).
        public static let invalidEndpoint = Code("invalidEndpoint")
        /// The transport named by an endpoint is not supported (`EPROTONOSUPPORT`).
        public static let protocolNotSupported = Code("protocolNotSupported")
        /// Another socket or process already listens on that address.
        public static let addressInUse = Code("addressInUse")
        /// The address does not belong to this machine.
        public static let addressNotAvailable = Code("addressNotAvailable")
        /// The socket was already closed by this process.
        public static let socketClosed = Code("socketClosed")
        /// The operation is not valid in the socket's current state (`EFSM`).
        public static let invalidState = Code("invalidState")
        /// An argument was out of range or malformed (`EINVAL` outside bind/connect).
        public static let invalidArgument = Code("invalidArgument")
        /// The operation is not supported by this socket type or this libzmq build.
        public static let notSupported = Code("notSupported")
        /// A blocking call was interrupted by a signal (`EINTR`).
        public static let interrupted = Code("interrupted")
        /// The process or context ran out of sockets or file descriptors.
        public static let tooManySockets = Code("tooManySockets")
        /// Any other errno; see ``ZeroMQError/errno``.
        public static let other = Code("other")
    }

    /// The kind of failure.
    public var code: Code
    /// The operating system or libzmq error number (0 when the check was this layer's own).
    public var errno: Int32
    /// libzmq's text for ``errno`` (`zmq_strerror`), or this layer's own explanation.
    public var message: String
    /// The call that failed, such as `zmq_bind`.
    public var operation: String
    /// What the call was applied to, such as the endpoint or option name.
    public var subject: String?

    /// An error from its parts, as the ZeroMQ layer makes them after a failed call.
    public init(code: Code, errno: Int32, message: String, operation: String, subject: String? = nil) {
        self.code = code
        self.errno = errno
        self.message = message
        self.operation = operation
        self.subject = subject
    }

    /// The error for the calling thread's `zmq_errno()` after `operation` failed.
    static func last(_ operation: String, subject: String? = nil) -> ZeroMQError {
        fromErrno(zmq_errno(), operation, subject: subject)
    }

    static func fromErrno(_ number: Int32, _ operation: String, subject: String? = nil) -> ZeroMQError {
        let text = zmq_strerror(number).map { String(cString: $0) } ?? "error \(number)"
        let isEndpointCall = ["zmq_bind", "zmq_connect", "zmq_unbind", "zmq_disconnect"].contains(operation)
        let code: Code
        switch number {
        case EAGAIN: code = .wouldBlock
        case courier_zmq_ETERM: code = .terminated
        case EHOSTUNREACH: code = .hostUnreachable
        case EINVAL where isEndpointCall, ENODEV where isEndpointCall, ENOENT where isEndpointCall:
            code = .invalidEndpoint
        case EPROTONOSUPPORT: code = .protocolNotSupported
        case EADDRINUSE: code = .addressInUse
        case EADDRNOTAVAIL: code = .addressNotAvailable
        case ENOTSOCK: code = .socketClosed
        case courier_zmq_EFSM: code = .invalidState
        case EINVAL: code = .invalidArgument
        case ENOTSUP, courier_zmq_ENOCOMPATPROTO: code = .notSupported
        case EINTR: code = .interrupted
        case EMFILE, ENFILE: code = .tooManySockets
        default: code = .other
        }
        return ZeroMQError(code: code, errno: number, message: text, operation: operation, subject: subject)
    }

    /// A failure found by this layer before calling libzmq.
    static func usage(_ code: Code, _ message: String, _ operation: String, subject: String? = nil) -> ZeroMQError {
        ZeroMQError(code: code, errno: 0, message: message, operation: operation, subject: subject)
    }

    /// One line: the call, its subject, libzmq's message, the errno and what to do.
    public var description: String {
        var line = operation
        if let subject { line += "(\(subject))" }
        line += ": \(message)"
        if errno != 0 { line += " (errno \(errno))" }
        if let advice { line += "; \(advice)" }
        return line
    }

    private var advice: String? {
        switch code {
        case .invalidEndpoint:
            "use tcp://HOST:PORT (PORT may be * to pick one), ipc:///PATH or inproc://NAME"
        case .addressInUse: "another process listens there: pick another port or stop it"
        case .addressNotAvailable: "the address is not one of this machine's interfaces"
        case .protocolNotSupported: "this libzmq supports tcp://, ipc:// and inproc:// here"
        case .terminated: "the context is shutting down: close this socket"
        case .socketClosed: "the socket was closed; create a new one"
        case .hostUnreachable: "no peer with that routing id is connected right now"
        default: nil
        }
    }
}
