/// An error from Courier: what went wrong, what it concerns, and what to do.
public struct CourierError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. An open set.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, such as `spoolFull`.
        public let description: String
        private init(_ name: String) { description = name }

        /// The peer's spool is at its limit and the node is configured to throw.
        public static let spoolFull = Code("spoolFull")
        /// The disk failed or is full; nothing already stored was lost.
        public static let storage = Code("storage")
        /// Another process holds the data directory.
        public static let dataDirectoryLocked = Code("dataDirectoryLocked")
        /// No peer with that id is configured.
        public static let unknownPeer = Code("unknownPeer")
        /// The payload is above ``NodeConfiguration/maxMessageSize``, or above the maximum
        /// the peer announced (``PeerStatistics/peerMaxMessageSize``).
        public static let messageTooLarge = Code("messageTooLarge")
        /// The message's headers break a limit of ``MessageHeaders`` (too many, a name empty,
        /// too long or repeated, a value too long, too many bytes in all).
        public static let invalidHeaders = Code("invalidHeaders")
        /// The node is shutting down or stopped.
        public static let shutDown = Code("shutDown")
        /// No message with that id was sent by this node: a number its stream to the peer
        /// never assigned, or a stream it no longer has (its spool was wiped).
        public static let unknownMessage = Code("unknownMessage")
        /// The configuration is unusable (bad id, bad endpoint, duplicate peer…).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The task waiting (for an outcome, for delivery) was cancelled.
        public static let cancelled = Code("cancelled")
        /// An endpoint could not be bound or connected.
        public static let network = Code("network")
        /// A value could not be encoded into a payload (``Node/send(_:to:headers:timeToLive:encoder:)``).
        public static let encoding = Code("encoding")
    }

    /// The kind of failure.
    public var code: Code
    /// What happened and what to do, in one sentence.
    public var message: String
    /// The underlying error, if any (a `SpoolError`, a `ZeroMQError`).
    public var underlying: (any Error & Sendable)?

    /// An error with `code`, a `message` that says what to do, and the error that caused it.
    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// The code and the message, with the underlying error when there is one.
    public var description: String {
        if let underlying { return "\(message) (\(underlying))" }
        return message
    }
}
