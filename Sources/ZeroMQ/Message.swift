/// A ZeroMQ message: one or more frames, sent and received atomically.
///
/// A ROUTER socket's received messages start with the sender's routing id frame, and a
/// message sent through a ROUTER starts with the routing id of the peer to send it to.
public struct Message: Sendable, Hashable, ExpressibleByArrayLiteral {
    /// The frames, in order. A frame may be empty.
    public var frames: [[UInt8]]
    /// The user id the ZAP handler gave the connection this message came in on (libzmq's
    /// `User-Id` message property); set only by ``Socket/tryReceive(readingUserID:)``.
    public var userID: String?

    /// A message of the given frames; an empty array is not a valid message to send.
    public init(_ frames: [[UInt8]]) { self.frames = frames }

    /// A message of the given frames: `[routingID, body]`.
    public init(arrayLiteral frames: [UInt8]...) { self.frames = frames }

    /// A one-frame message holding the UTF-8 bytes of `text`.
    public init(text: String) { self.frames = [Array(text.utf8)] }

    /// The total payload size over all frames.
    public var byteCount: Int { frames.reduce(0) { $0 + $1.count } }
}
