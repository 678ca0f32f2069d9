/// How a sent message ended.
public enum Outcome: Sendable, Hashable, CustomStringConvertible {
    /// The receiving application acknowledged it.
    case processed
    /// The receiving application refused it, with its reason. Kept in the dead letters.
    case rejected(reason: String)
    /// Its time-to-live passed before it was delivered. Kept in the dead letters.
    case expired
    /// It was given up, for the reason given (such as attempts exhausted, or its spool record
    /// was corrupt). Kept in the dead letters when its record could be read.
    case deadLettered(reason: String)

    /// `processed`, or the outcome with its reason, for logs.
    public var description: String {
        switch self {
        case .processed: "processed"
        case .rejected(let reason): "rejected (\(reason))"
        case .expired: "expired"
        case .deadLettered(let reason): "dead-lettered (\(reason))"
        }
    }
}

/// Identifies one message: the peer it goes to, the stream and its number there.
public struct MessageID: Sendable, Hashable, CustomStringConvertible {
    /// The receiving peer's id.
    public var peer: String
    /// The sender's stream (spool incarnation) for that peer.
    public var stream: UInt64
    /// The message's number in the stream: 1, 2, 3, … with no gaps.
    public var sequence: UInt64

    /// The identity of message `sequence` in `peer`'s stream `stream`.
    public init(peer: String, stream: UInt64, sequence: UInt64) {
        self.peer = peer
        self.stream = stream
        self.sequence = sequence
    }

    /// `peer/stream (hex)/sequence`, as `courier-spool` prints message ids.
    public var description: String { "\(peer)/\(String(stream, radix: 16))/\(sequence)" }
}
