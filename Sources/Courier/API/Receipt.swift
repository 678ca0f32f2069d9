/// Proof that ``Node/send(_:to:headers:timeToLive:)-([UInt8],_,_,_)`` stored a message, and the way to learn its
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

    /// Receipts are equal when they are for the same message.
    public static func == (lhs: Receipt, rhs: Receipt) -> Bool { lhs.id == rhs.id }
    /// Hashes the message's identity.
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

extension Array where Element == Receipt {
    /// Waits until every message has an outcome, and returns them in the receipts' order.
    ///
    /// The same as awaiting each receipt's ``Receipt/outcome()`` in turn, but cheaper for
    /// the receipts of one ``Node/send(batch:to:headers:timeToLive:)``: the outcomes already known
    /// are read together, and the wait is only for the first one that is not. Throws what
    /// ``Receipt/outcome()`` throws, for the first receipt that fails.
    public func outcomes() async throws(CourierError) -> [Outcome] {
        guard let core = first?.core else { return [] }
        if allSatisfy({ $0.core === core }) {
            return try await core.outcomes.outcomes(of: map(\.id))
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(count)
        for receipt in self { outcomes.append(try await receipt.outcome()) }
        return outcomes
    }
}
