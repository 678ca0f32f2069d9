/// Proof that ``Node/send(_:to:timeToLive:)`` stored a message, and the way to learn its
/// outcome.
public struct Receipt: Sendable, Hashable {
    /// The message's identity.
    public let id: MessageID
    let core: NodeCore

    /// Waits until the message has an outcome: processed by the receiving application,
    /// rejected by it, expired, or dead-lettered.
    ///
    /// Receipts cost nothing while nobody waits; the outcome can be asked for at any time,
    /// before or after it happened. Throws ``CourierError/Code/shutDown`` if the node stops
    /// before the outcome is known (it is then learned after the next start).
    public func outcome() async throws(CourierError) -> Outcome {
        try await core.outcome(of: id)
    }

    public static func == (lhs: Receipt, rhs: Receipt) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}
