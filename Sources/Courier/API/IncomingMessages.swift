/// The messages delivered to a node, as an `AsyncSequence`. Iterate it from one task;
/// the sequence ends when the node shuts down.
public struct IncomingMessages: AsyncSequence, Sendable {
    public typealias Element = IncomingMessage
    let stream: AsyncStream<IncomingMessage>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<IncomingMessage>.AsyncIterator
        public mutating func next() async -> IncomingMessage? { await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
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
