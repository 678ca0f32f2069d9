/// The messages delivered to a node, as an `AsyncSequence`. Iterate it from one task;
/// the sequence ends when the node shuts down.
///
/// The sequence ends as soon as a shutdown begins: messages not yet taken then are not
/// handed out, and come again (unflagged) after the next start.
public struct IncomingMessages: AsyncSequence, Sendable {
    public typealias Element = IncomingMessage
    let stream: AsyncStream<IncomingMessage>
    let tracker: DeliveryTracker

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<IncomingMessage>.AsyncIterator
        let tracker: DeliveryTracker
        public mutating func next() async -> IncomingMessage? {
            guard let message = await base.next(), tracker.take(message) else { return nil }
            return message
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), tracker: tracker)
    }
}

/// A node's events, as an `AsyncSequence`. Events that nobody reads are kept up to a
/// bound (the oldest dropped first). The sequence ends when the node shuts down.
public struct NodeEvents: AsyncSequence, Sendable {
    public typealias Element = NodeEvent
    let stream: AsyncStream<NodeEvent>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<NodeEvent>.AsyncIterator
        public mutating func next() async -> NodeEvent? { await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}
