import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Socket {
    /// Sends every frame of `message`, waiting while the peer's queue is at its high-water
    /// mark (up to ``SocketOption/sendTimeout``, after which it throws
    /// ``ZeroMQError/Code/wouldBlock``).
    public func send(_ message: Message) throws(ZeroMQError) {
        _ = try sendFrames(message.frames, wait: true)
    }

    /// Sends `message` if it can be queued at once.
    /// - Returns: `false` when the socket would have to wait (high-water mark reached, or no
    ///   peer to send to); nothing was sent then.
    public func trySend(_ message: Message) throws(ZeroMQError) -> Bool {
        try sendFrames(message.frames, wait: false)
    }

    /// Receives one whole message, waiting for it (up to ``SocketOption/receiveTimeout``,
    /// after which it throws ``ZeroMQError/Code/wouldBlock``).
    public func receive() throws(ZeroMQError) -> Message {
        // A blocking receive returns a message or throws; nil cannot come back.
        guard let message = try receiveFrames(wait: true) else {
            throw .usage(.wouldBlock, "no message arrived before the receive timeout", "zmq_msg_recv")
        }
        return message
    }

    /// Receives one whole message if one is waiting.
    /// - Returns: `nil` when none is waiting.
    public func tryReceive() throws(ZeroMQError) -> Message? {
        try receiveFrames(wait: false)
    }

    /// Receives one whole message if one is waiting and, when `readingUserID` is true, the
    /// user id that authentication (ZAP) bound to its connection, in ``Message/userID``.
    public func tryReceive(readingUserID: Bool) throws(ZeroMQError) -> Message? {
        try receiveFrames(wait: false, userID: readingUserID)
    }

    private func sendFrames(_ frames: [[UInt8]], wait: Bool) throws(ZeroMQError) -> Bool {
        guard !frames.isEmpty else {
            throw .usage(.invalidArgument, "a message needs at least one frame", "zmq_send")
        }
        return try withHandle("zmq_send") { handle throws(ZeroMQError) in
            for (index, frame) in frames.enumerated() {
                var flags: Int32 = index < frames.count - 1 ? ZMQ_SNDMORE : 0
                // Only the first frame can block: libzmq queues the rest of a multipart
                // message once its first frame was accepted.
                if !wait || index > 0 { flags |= ZMQ_DONTWAIT }
                while true {
                    let result = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                    if result >= 0 { break }
                    let number = zmq_errno()
                    if number == EINTR && wait { continue }
                    if number == EAGAIN && index == 0 && !wait { return false }
                    throw .fromErrno(number, "zmq_send")
                }
            }
            return true
        }
    }

    private func receiveFrames(wait: Bool, userID: Bool = false) throws(ZeroMQError) -> Message? {
        try withHandle("zmq_msg_recv") { handle throws(ZeroMQError) in
            var frames: [[UInt8]] = []
            var userIDFound: String?
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            while true {
                let flags: Int32 = (wait || !frames.isEmpty) ? 0 : ZMQ_DONTWAIT
                if zmq_msg_recv(&message, handle, flags) < 0 {
                    let number = zmq_errno()
                    if number == EINTR && (wait || !frames.isEmpty) { continue }
                    if number == EAGAIN && frames.isEmpty && !wait { return nil }
                    throw .fromErrno(number, "zmq_msg_recv")
                }
                var user: String?
                // A ROUTER's own routing-id frame carries no metadata; the peer's frames do.
                if userID && userIDFound == nil, let property = zmq_msg_gets(&message, "User-Id") {
                    user = String(cString: property)
                }
                frames.append(Self.copyBytes(of: &message))
                if let user { userIDFound = user }
                if zmq_msg_more(&message) == 0 {
                    var result = Message(frames)
                    result.userID = userIDFound
                    return result
                }
            }
        }
    }

    /// The frame's bytes, read from the `zmq_msg_t` exactly once.
    private static func copyBytes(of message: inout zmq_msg_t) -> [UInt8] {
        let size = zmq_msg_size(&message)
        guard size > 0, let source = zmq_msg_data(&message) else { return [] }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            buffer.baseAddress!.initialize(from: source.assumingMemoryBound(to: UInt8.self), count: size)
            count = size
        }
    }
}
