/// A message delivered to this node's application.
///
/// Acknowledge each message once the application is done with it (``acknowledge()``), or
/// refuse it (``reject(reason:)``); the sender learns which. Until then it may be delivered
/// again after a crash, flagged ``redelivered``. Messages may be acknowledged in any order.
public struct IncomingMessage: Sendable {
    /// The sending node's id.
    public let sender: String
    /// The sender's stream (a new one after its spool was wiped).
    public let stream: UInt64
    /// The message's number in the stream.
    public let sequence: UInt64
    /// True when this message may have been handed to the application before (before a
    /// crash or restart of this node). False guarantees it was never handed out.
    public let redelivered: Bool
    /// The sender's transmission count for this copy (1 = first transmission).
    public let attempt: Int
    /// The headers the sender gave the message (none from a sender that speaks protocol
    /// version 1).
    public let headers: MessageHeaders
    /// The application's bytes.
    public let payload: [UInt8]
    let core: NodeCore

    /// Marks the message processed. The acknowledgement is durable before the sender is told.
    public func acknowledge() {
        core.settle(sender: sender, stream: stream, sequence: sequence, rejection: nil)
    }

    /// Refuses the message; the sender gets ``Outcome/rejected(reason:)`` and keeps it in its
    /// dead letters. The message is never delivered again. The sender receives at most the
    /// first 1,024 bytes of `reason`'s UTF-8, cut before a character that would not fit.
    public func reject(reason: String) {
        core.settle(sender: sender, stream: stream, sequence: sequence, rejection: reason)
    }
}
