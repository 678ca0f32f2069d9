/// One message's outcome, as ``Node/outcomes(for:extent:)`` reports it.
public struct OutcomeReport: Sendable, Hashable, CustomStringConvertible {
    /// The message: keep it to acknowledge the report with ``Node/acknowledgeOutcomes(through:)``.
    public let id: MessageID
    /// How it ended.
    public let outcome: Outcome

    /// A report of `outcome` for message `id`.
    public init(id: MessageID, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }

    /// The message id and its outcome, for logs.
    public var description: String { "\(id): \(outcome)" }
}

/// The outcomes of the messages sent to one peer, in sequence order, from where the
/// application last acknowledged them: the sequence ``Node/outcomes(for:extent:)`` returns.
///
/// Each iteration starts after the durable cursor (``Node/acknowledgeOutcomes(through:)``)
/// as it stands when the iteration begins; several iterations may run at once, each from
/// there. A message whose outcome is not known yet is waited for, and so is a number not yet
/// assigned (a message not sent yet): reports never skip a number and never invent one.
/// The iteration ends with ``CourierError/Code/shutDown`` when the node stops,
/// ``CourierError/Code/unknownPeer`` when the peer is removed (or was never configured),
/// ``CourierError/Code/cancelled`` when the iterating task is cancelled while it waits, and
/// ``CourierError/Code/storage`` when the cursor cannot be read; after an error it ends.
public struct OutcomeReports: AsyncSequence, Sendable {
    /// Each element is one message's outcome.
    public typealias Element = OutcomeReport
    /// Iteration fails only with a ``CourierError``.
    public typealias Failure = CourierError

    /// Where an iteration ends.
    public enum Extent: Sendable, Hashable {
        /// Never, while the node runs: after the messages sent so far, it waits for the
        /// outcomes of the next ones.
        case continuing
        /// After the outcome of the last message sent when the iteration begins (its first
        /// `next()`), waiting for the outcomes still pending up to there. With
        /// ``Node/waitUntilDelivered(to:)`` first, no wait at all.
        case sentSoFar
    }

    let core: NodeCore
    let peer: String
    let extent: Extent

    /// Iterates the reports. Not shared between tasks: each iteration keeps its own place.
    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        /// Iteration fails only with a ``CourierError``.
        public typealias Failure = CourierError

        let core: NodeCore
        let peer: String
        let extent: Extent
        /// Set by the first `next()`: the stream, the next number to report, the last one
        /// to report (``Extent/sentSoFar`` only).
        private var place: (stream: UInt64, next: UInt64, last: UInt64?)?
        /// Outcomes already read, of the numbers from `place.next - buffer.count + index`.
        private var buffer: [Outcome] = []
        private var index = 0
        private var finished = false
        /// How many settled outcomes one look at the book takes at most.
        private static let batch = 1024

        init(core: NodeCore, peer: String, extent: Extent) {
            self.core = core
            self.peer = peer
            self.extent = extent
        }

        /// The next message's outcome, in sequence order; nil after the last one of a
        /// ``Extent/sentSoFar`` iteration. Throws as ``OutcomeReports`` describes.
        public mutating func next() async throws(CourierError) -> OutcomeReport? {
            guard !finished else { return nil }
            do {
                return try await advance()
            } catch {
                finished = true
                throw error
            }
        }

        /// ``next()``; reports do not depend on the caller's isolation.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(CourierError) -> OutcomeReport? {
            try await next()
        }

        private mutating func advance() async throws(CourierError) -> OutcomeReport? {
            if place == nil {
                let start = try await core.outcomeReportsStart(for: peer)
                place = (start.stream, start.consumedUpTo + 1, extent == .sentSoFar ? start.lastAssigned : nil)
            }
            guard var place else { return nil }
            defer { self.place = place }
            if index < buffer.count {
                defer { index += 1 }
                let sequence = place.next - UInt64(buffer.count - index)
                return OutcomeReport(id: MessageID(peer: peer, stream: place.stream, sequence: sequence), outcome: buffer[index])
            }
            if let last = place.last, place.next > last {
                finished = true
                return nil
            }
            let limit = place.last.map { Int(clamping: $0 - place.next + 1) } ?? Int.max
            let id = MessageID(peer: peer, stream: place.stream, sequence: place.next)
            let known = try core.outcomes.settled(peer: peer, stream: place.stream, from: place.next, limit: Swift.min(limit, Self.batch)).get()
            if known.isEmpty {
                // Pending, or not assigned yet: wait for it (ends with the node, the peer, or
                // the task's cancellation).
                let outcome = try await core.outcomes.outcome(of: id)
                place.next += 1
                return OutcomeReport(id: id, outcome: outcome)
            }
            buffer = known
            index = 1
            place.next += UInt64(known.count)
            return OutcomeReport(id: id, outcome: known[0])
        }
    }

    /// Starts an iteration, from the cursor as it stands at its first `next()`.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(core: core, peer: peer, extent: extent)
    }
}
