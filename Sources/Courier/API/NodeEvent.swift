/// Something that happened to a node, reported through ``Node/events``.
public enum NodeEvent: Sendable, Hashable, CustomStringConvertible {
    /// The connection to a peer completed its handshake.
    case peerConnected(peer: String)
    /// The connection to a peer was lost; messages keep spooling.
    case peerDisconnected(peer: String)
    /// A sent message ended in the dead letters.
    case deadLettered(MessageID, Outcome)
    /// Damage was found in this node's data directory; the damaged part was quarantined.
    case corruptionFound(description: String)
    /// A frame from the network was refused (and changed nothing).
    case hostileFrameDropped(from: String, reason: String)
    /// Security refused a connection: its CURVE key (Z85) is not on the allow-list.
    case handshakeRefused(key: String, address: String)
    /// A sender opened more streams than ``NodeConfiguration/maxStreamsPerSender``: the
    /// deduplication state of its least recently active stream (one its sender moved on from)
    /// was dropped.
    case streamRetired(sender: String, stream: UInt64)
    /// A peer answered that it does not speak this node's protocol version; it lists the
    /// versions it does. Nothing is delivered to it until one side is upgraded.
    case unsupportedProtocol(peer: String, peerVersions: [Int])

    /// A one-line account of the event, for logs.
    public var description: String {
        switch self {
        case .peerConnected(let peer): "peer \(peer) connected"
        case .peerDisconnected(let peer): "peer \(peer) disconnected"
        case .deadLettered(let id, let outcome): "message \(id) dead-lettered: \(outcome)"
        case .corruptionFound(let description): "corruption found: \(description)"
        case .hostileFrameDropped(let from, let reason): "frame from \(from) dropped: \(reason)"
        case .handshakeRefused(let key, let address): "handshake from \(address) refused: key \(key) is not trusted"
        case .streamRetired(let sender, let stream): "stream \(String(stream, radix: 16)) of \(sender) retired"
        case .unsupportedProtocol(let peer, let versions): "peer \(peer) speaks protocol versions \(versions) only"
        }
    }
}

/// One peer's delivery figures, from ``Node/statistics(for:)``.
public struct PeerStatistics: Sendable, Hashable {
    /// The peer's id.
    public var peer: String
    /// Whether the connection is up and the handshake done.
    public var connected: Bool
    /// When ``connected`` last changed (monotonic clock).
    public var since: ContinuousClock.Instant
    /// The stream id this node sends to the peer on.
    public var stream: UInt64
    /// Messages in the spool not yet finished.
    public var pending: Int
    /// Bytes in the spool not yet finished.
    public var pendingBytes: Int64
    /// Messages sent and not yet processed.
    public var inFlight: Int
    /// Messages processed by the peer (since start).
    public var processed: Int
    /// Messages rejected by the peer (since start).
    public var rejected: Int
    /// Messages expired (since start).
    public var expired: Int
    /// Messages dead-lettered for other reasons (since start).
    public var deadLettered: Int
    /// Retransmitted copies (since start).
    public var retransmitted: Int
    /// The smoothed round-trip time, once measured.
    public var roundTripTime: Duration?
    /// The protocol version spoken with the peer while connected (2, or 1 for a peer from
    /// before version 2); nil while not connected.
    public var protocolVersion: Int?
    /// The in-flight window the peer announced (protocol version 2): this node never sends
    /// more than that beyond the peer's processed mark. Nil until the peer said.
    public var peerWindow: Int?
    /// The largest payload the peer announced it takes (protocol version 2): `send` refuses a
    /// larger one with ``CourierError/Code/messageTooLarge``, and one already spooled is
    /// dead-lettered instead of sent. Nil until the peer said.
    public var peerMaxMessageSize: Int?
}
