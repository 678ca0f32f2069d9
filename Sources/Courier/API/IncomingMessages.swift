/// The messages delivered to a node, as an `AsyncSequence`. Iterate it from one task;
/// the sequence ends when the node shuts down.
///
/// The sequence ends as soon as a shutdown begins: messages not yet taken then are not
/// handed out, and come again (unflagged) after the next start.
public struct IncomingMessages: AsyncSequence, Sendable {
    /// Each element is one delivered message.
    public typealias Element = IncomingMessage
    let channel: HandOffChannel<DeliveryBatch>
    let tracker: DeliveryTracker

    /// Iterates the node's messages; one iterator per node at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: HandOffChannel<DeliveryBatch>
        let tracker: DeliveryTracker

        /// The next message in order, or nil once the node has shut down.
        public mutating func next() async -> IncomingMessage? {
            while true {
                switch tracker.next() {
                case .message(let message): return message
                case .stopped: return nil
                case .empty:
                    // The I/O thread hands messages over a batch at a time.
                    guard let batch = await channel.next(), tracker.accept(batch) else { return nil }
                }
            }
        }

        /// The next messages in order: at least one (waiting for it), then as many more as
        /// have already arrived, up to `maximum`, without waiting for more. Nil once the
        /// node has shut down.
        ///
        /// For consumers that work in batches: write a batch's results with one write or
        /// one transaction, then settle each of its messages. Each message counts as handed
        /// out (for ``IncomingMessage/redelivered`` after a crash) when this returns it.
        public mutating func next(upTo maximum: Int) async -> [IncomingMessage]? {
            guard let first = await next() else { return nil }
            var messages = [first]
            while messages.count < maximum {
                switch tracker.next() {
                case .message(let message):
                    messages.append(message)
                case .empty:
                    // The next batch, if it has arrived already.
                    guard let batch = channel.poll(), tracker.accept(batch) else { return messages }
                case .stopped:
                    return messages
                }
            }
            return messages
        }
    }

    /// Starts iterating the messages. Iterate from one task only.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(channel: channel, tracker: tracker)
    }
}

/// A node's events, as an `AsyncSequence`. Events that nobody reads are kept up to a
/// bound (the oldest dropped first). The sequence ends when the node shuts down.
public struct NodeEvents: AsyncSequence, Sendable {
    /// Each element is one event.
    public typealias Element = NodeEvent
    let channel: HandOffChannel<NodeEvent>

    /// Iterates the node's events.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: HandOffChannel<NodeEvent>
        /// The next event, or nil once the node has shut down.
        public mutating func next() async -> NodeEvent? { await channel.next() }
    }

    /// Starts iterating the events.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: channel) }
}
