import CZeroMQ

/// A typed socket option: its libzmq name and the Swift type of its value.
///
/// Set and read options through ``Socket/set(_:_:)-(SocketOption<Int32>,_)`` and the
/// `get` overloads; the option's type picks the right encoding:
///
/// ```swift
/// try socket.set(.routingID, Array("node-a".utf8))
/// try socket.set(.heartbeatInterval, .seconds(1))
/// try socket.set(.routerHandover, true)
/// let endpoint = try socket.get(.lastEndpoint)
/// ```
public struct SocketOption<Value>: Sendable, CustomStringConvertible {
    /// The libzmq option name, for messages.
    public let description: String
    let code: Int32
    /// The unit of a time option in libzmq (milliseconds for most, seconds for TCP ones).
    let secondsUnit: Bool

    init(_ name: String, _ code: Int32, seconds: Bool = false) {
        self.description = name
        self.code = code
        self.secondsUnit = seconds
    }
}

extension SocketOption where Value == Int32 {
    /// Most messages queued for sending per peer before sends block (`ZMQ_SNDHWM`). libzmq default: 1000.
    public static var sendHighWaterMark: Self { .init("ZMQ_SNDHWM", ZMQ_SNDHWM) }
    /// Most messages queued on receipt per peer (`ZMQ_RCVHWM`). libzmq default: 1000.
    public static var receiveHighWaterMark: Self { .init("ZMQ_RCVHWM", ZMQ_RCVHWM) }
    /// Keep-alive probes before a TCP connection is dropped (`ZMQ_TCP_KEEPALIVE_CNT`); -1: the OS default.
    public static var tcpKeepAliveCount: Self { .init("ZMQ_TCP_KEEPALIVE_CNT", ZMQ_TCP_KEEPALIVE_CNT) }
    /// Readiness bits (`ZMQ_EVENTS`: 1 readable, 2 writable). Read-only.
    public static var events: Self { .init("ZMQ_EVENTS", ZMQ_EVENTS) }
}

extension SocketOption where Value == Int64 {
    /// Largest inbound message in bytes; a peer sending a larger one is disconnected
    /// (`ZMQ_MAXMSGSIZE`). -1, the libzmq default, means no limit.
    public static var maxMessageSize: Self { .init("ZMQ_MAXMSGSIZE", ZMQ_MAXMSGSIZE) }
}

extension SocketOption where Value == Bool {
    /// Queue messages only for completed connections (`ZMQ_IMMEDIATE`). libzmq default: false.
    public static var immediate: Self { .init("ZMQ_IMMEDIATE", ZMQ_IMMEDIATE) }
    /// ROUTER: fail with ``ZeroMQError/Code/hostUnreachable`` instead of dropping a message
    /// for an unknown routing id (`ZMQ_ROUTER_MANDATORY`). Write-only. libzmq default: false.
    public static var routerMandatory: Self { .init("ZMQ_ROUTER_MANDATORY", ZMQ_ROUTER_MANDATORY) }
    /// ROUTER: a new connection with a routing id already in use takes it over
    /// (`ZMQ_ROUTER_HANDOVER`). Write-only. libzmq default: false (the newcomer is refused).
    public static var routerHandover: Self { .init("ZMQ_ROUTER_HANDOVER", ZMQ_ROUTER_HANDOVER) }
    /// Act as a CurveZMQ server (`ZMQ_CURVE_SERVER`); set ``curveSecretKey`` too.
    public static var curveServer: Self { .init("ZMQ_CURVE_SERVER", ZMQ_CURVE_SERVER) }
    /// Enable TCP keep-alive (`ZMQ_TCP_KEEPALIVE`). Reads true only when explicitly on.
    public static var tcpKeepAlive: Self { .init("ZMQ_TCP_KEEPALIVE", ZMQ_TCP_KEEPALIVE) }
    /// Use IPv6 as well as IPv4 (`ZMQ_IPV6`). libzmq default: false.
    public static var ipv6: Self { .init("ZMQ_IPV6", ZMQ_IPV6) }
    /// Whether more frames of the current message follow (`ZMQ_RCVMORE`). Read-only.
    public static var receiveMore: Self { .init("ZMQ_RCVMORE", ZMQ_RCVMORE) }
}

extension SocketOption where Value == Duration {
    /// Wait before reconnecting after a failure (`ZMQ_RECONNECT_IVL`). libzmq default: 100 ms.
    public static var reconnectInterval: Self { .init("ZMQ_RECONNECT_IVL", ZMQ_RECONNECT_IVL) }
    /// Cap of the exponential reconnect back-off; zero means no back-off
    /// (`ZMQ_RECONNECT_IVL_MAX`). libzmq default: 0.
    public static var reconnectIntervalMax: Self { .init("ZMQ_RECONNECT_IVL_MAX", ZMQ_RECONNECT_IVL_MAX) }
    /// Send a ZMTP PING this often on an idle connection; zero disables (`ZMQ_HEARTBEAT_IVL`).
    public static var heartbeatInterval: Self { .init("ZMQ_HEARTBEAT_IVL", ZMQ_HEARTBEAT_IVL) }
    /// Drop the connection when nothing arrives this long after a PING (`ZMQ_HEARTBEAT_TIMEOUT`).
    public static var heartbeatTimeout: Self { .init("ZMQ_HEARTBEAT_TIMEOUT", ZMQ_HEARTBEAT_TIMEOUT) }
    /// Ask the remote peer to drop the connection after this long without traffic
    /// (`ZMQ_HEARTBEAT_TTL`; libzmq keeps it in tenths of a second, at most 6553.5 s).
    public static var heartbeatTTL: Self { .init("ZMQ_HEARTBEAT_TTL", ZMQ_HEARTBEAT_TTL) }
    /// Longest a connection's ZMTP handshake may take; zero: no limit (`ZMQ_HANDSHAKE_IVL`).
    public static var handshakeInterval: Self { .init("ZMQ_HANDSHAKE_IVL", ZMQ_HANDSHAKE_IVL) }
    /// Idle time before TCP keep-alive probes start (`ZMQ_TCP_KEEPALIVE_IDLE`, whole seconds).
    public static var tcpKeepAliveIdle: Self { .init("ZMQ_TCP_KEEPALIVE_IDLE", ZMQ_TCP_KEEPALIVE_IDLE, seconds: true) }
    /// Time between TCP keep-alive probes (`ZMQ_TCP_KEEPALIVE_INTVL`, whole seconds).
    public static var tcpKeepAliveInterval: Self { .init("ZMQ_TCP_KEEPALIVE_INTVL", ZMQ_TCP_KEEPALIVE_INTVL, seconds: true) }
}

extension SocketOption where Value == Duration? {
    /// Longest a blocking receive waits; `nil` waits forever (`ZMQ_RCVTIMEO`). Default: nil.
    /// On timeout the call throws ``ZeroMQError/Code/wouldBlock``.
    public static var receiveTimeout: Self { .init("ZMQ_RCVTIMEO", ZMQ_RCVTIMEO) }
    /// Longest a blocking send waits; `nil` waits forever (`ZMQ_SNDTIMEO`). Default: nil.
    public static var sendTimeout: Self { .init("ZMQ_SNDTIMEO", ZMQ_SNDTIMEO) }
}

extension SocketOption where Value == Linger {
    /// What closing does with unsent messages (`ZMQ_LINGER`). Default here: ``Linger/discard``.
    public static var linger: Self { .init("ZMQ_LINGER", ZMQ_LINGER) }
}

extension SocketOption where Value == [UInt8] {
    /// The identity a ROUTER peer sees for this socket (`ZMQ_ROUTING_ID`): 1–255 bytes, not
    /// starting with a zero byte. Set before connecting.
    public static var routingID: Self { .init("ZMQ_ROUTING_ID", ZMQ_ROUTING_ID) }
}

extension SocketOption where Value == String {
    /// The last endpoint bound or connected, wildcards resolved (`ZMQ_LAST_ENDPOINT`). Read-only.
    public static var lastEndpoint: Self { .init("ZMQ_LAST_ENDPOINT", ZMQ_LAST_ENDPOINT) }
    /// The ZAP authentication domain of a server socket (`ZMQ_ZAP_DOMAIN`).
    public static var zapDomain: Self { .init("ZMQ_ZAP_DOMAIN", ZMQ_ZAP_DOMAIN) }
}

extension SocketOption where Value == CurveKey {
    /// This socket's long-term public key (`ZMQ_CURVE_PUBLICKEY`).
    public static var curvePublicKey: Self { .init("ZMQ_CURVE_PUBLICKEY", ZMQ_CURVE_PUBLICKEY) }
    /// This socket's long-term secret key (`ZMQ_CURVE_SECRETKEY`).
    public static var curveSecretKey: Self { .init("ZMQ_CURVE_SECRETKEY", ZMQ_CURVE_SECRETKEY) }
    /// A client's knowledge of the server's public key (`ZMQ_CURVE_SERVERKEY`).
    public static var curveServerKey: Self { .init("ZMQ_CURVE_SERVERKEY", ZMQ_CURVE_SERVERKEY) }
}
