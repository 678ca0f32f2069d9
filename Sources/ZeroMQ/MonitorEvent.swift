import CZeroMQ

/// A connection event reported by a socket monitor (`zmq_socket_monitor`).
public struct MonitorEvent: Sendable, Hashable, CustomStringConvertible {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// An outgoing connection was established (TCP level; the ZMTP handshake follows).
        case connected
        /// A connect could not complete at once and is being retried in the background.
        case connectDelayed
        /// A reconnect was scheduled after this long.
        case connectRetried(after: Duration)
        /// The socket is listening on the endpoint.
        case listening
        /// Binding failed with this errno.
        case bindFailed(errno: Int32)
        /// An incoming connection was accepted.
        case accepted
        /// Accepting an incoming connection failed with this errno.
        case acceptFailed(errno: Int32)
        /// A connection's underlying descriptor was closed.
        case closed
        /// Closing failed with this errno.
        case closeFailed(errno: Int32)
        /// A session was broken (peer gone, heartbeat timed out, handshake failed…).
        case disconnected
        /// The monitor itself stopped (the socket was closed).
        case monitorStopped
        /// The ZMTP handshake (and authentication, if any) succeeded.
        case handshakeSucceeded
        /// The handshake failed for a system reason, with this errno.
        case handshakeFailedNoDetail(errno: Int32)
        /// The handshake failed on a protocol error (`ZMQ_PROTOCOL_ERROR_*`), for example a
        /// CURVE key mismatch (cryptographic error).
        case handshakeFailedProtocol(code: UInt32)
        /// Authentication refused the peer, with the ZAP status code (300, 400, 500).
        case handshakeFailedAuth(status: UInt32)
        /// An event this layer does not know, with libzmq's number and value.
        case unknown(event: UInt16, value: UInt32)

        /// Whether this is one of the handshake failures.
        public var isHandshakeFailure: Bool {
            switch self {
            case .handshakeFailedAuth, .handshakeFailedProtocol, .handshakeFailedNoDetail: true
            default: false
            }
        }
    }

    /// What happened.
    public var kind: Kind
    /// The endpoint it happened on (the remote address for accepted connections in recent
    /// libzmq versions, otherwise the local bind or connect address).
    public var endpoint: String

    /// The event kind and the endpoint it concerns.
    public var description: String { "\(kind) \(endpoint)" }

    /// Decodes libzmq's two-frame monitor message; `nil` when it is not one.
    init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let header = frames[0]
        // libzmq writes the event number and value in the host's byte order.
        let number = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) }
        let value = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        self.endpoint = String(decoding: frames[1], as: UTF8.self)
        self.kind = Self.kind(Int32(number), value)
    }

    private static func kind(_ number: Int32, _ value: UInt32) -> Kind {
        let errno = Int32(bitPattern: value)
        switch number {
        case ZMQ_EVENT_CONNECTED: return .connected
        case ZMQ_EVENT_CONNECT_DELAYED: return .connectDelayed
        case ZMQ_EVENT_CONNECT_RETRIED: return .connectRetried(after: .milliseconds(Int64(value)))
        case ZMQ_EVENT_LISTENING: return .listening
        case ZMQ_EVENT_BIND_FAILED: return .bindFailed(errno: errno)
        case ZMQ_EVENT_ACCEPTED: return .accepted
        case ZMQ_EVENT_ACCEPT_FAILED: return .acceptFailed(errno: errno)
        case ZMQ_EVENT_CLOSED: return .closed
        case ZMQ_EVENT_CLOSE_FAILED: return .closeFailed(errno: errno)
        case ZMQ_EVENT_DISCONNECTED: return .disconnected
        case ZMQ_EVENT_MONITOR_STOPPED: return .monitorStopped
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return .handshakeSucceeded
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: return .handshakeFailedNoDetail(errno: errno)
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: return .handshakeFailedProtocol(code: value)
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return .handshakeFailedAuth(status: value)
        default: return .unknown(event: UInt16(truncatingIfNeeded: number), value: value)
        }
    }
}
