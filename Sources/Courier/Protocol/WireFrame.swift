/// The frames of Courier's wire protocol, versions 1 and 2 (docs/PROTOCOL.md describes each
/// byte). A frame's fields are those of version 2; what version 1 lacks is nil or empty.
///
/// Every frame travels as the single body frame of a ZeroMQ message between a sender's
/// DEALER and a receiver's ROUTER; the ROUTER's routing-id frame names the sender.
enum WireFrame: Equatable, Sendable {
    /// Sender → receiver, on every new connection: where the sender's stream stands.
    case hello(Hello)
    /// Receiver → sender, in answer to a hello: where the receiver stands.
    case welcome(Welcome)
    /// Sender → receiver: one or more consecutive-or-not records of one stream.
    case data(DataBatch)
    /// Receiver → sender: cumulative and selective acknowledgement.
    case ack(Ack)
    /// Receiver → sender: messages that ended other than by being processed.
    case outcomes(Outcomes)
    /// Receiver → sender, in answer to a frame of a protocol version the receiver does not
    /// speak: the versions it does speak. Carries no stream id.
    case versions(Versions)

    struct Hello: Equatable, Sendable {
        /// The sender's stream incarnation (nonzero).
        var stream: UInt64
        /// The lowest sequence number still pending at the sender (≥ 1).
        var firstUnacknowledged: UInt64
        /// The next sequence number the sender will assign (> every number it has used).
        var nextSequence: UInt64
        /// Version 2: the question's number, which its WELCOME echoes. Nil: a version-1 HELLO.
        var nonce: UInt64? = nil
    }

    struct Welcome: Equatable, Sendable {
        var stream: UInt64
        /// Every sequence number up to this one is processed (durably recorded).
        var processedUpTo: UInt64
        /// Every sequence number up to this one has arrived and is held by the receiver.
        var receivedUpTo: UInt64
        /// Version 2: the HELLO answered and the receiver's limits. Nil: a version-1 WELCOME.
        var answer: Answer? = nil
    }

    /// What a version-2 WELCOME adds: which HELLO it answers, and the limits the sender must
    /// keep to.
    struct Answer: Equatable, Sendable {
        /// The nonce of the HELLO answered.
        var nonce: UInt64
        /// The receiver's in-flight window: numbers beyond processed-up-to plus this are dropped.
        var window: UInt32
        /// The largest payload the receiver takes; a larger record is dropped.
        var maxMessageSize: UInt32
        /// Numbers above received-up-to the receiver holds too (arrived beyond a gap), as
        /// closed ranges, ascending, each leaving a gap before it: a resend skips them.
        var receivedRanges: [ClosedRange<UInt64>] = []
    }

    struct DataBatch: Equatable, Sendable {
        var stream: UInt64
        var records: [DataRecord]
    }

    struct DataRecord: Equatable, Sendable {
        var sequence: UInt64
        /// 1 for the first transmission, counting up with each retransmission.
        var attempt: UInt32
        /// The sender gave the message up (expired or out of attempts); the receiver must
        /// not deliver it, only record its number as done. Its payload is empty.
        var isTombstone: Bool
        /// Time-to-live deadline, nanoseconds since the Unix epoch; 0 for none.
        var expiry: Int64
        /// The application's bytes; a slice of the received frame, not a copy.
        var payload: ArraySlice<UInt8>
        /// Version 2: the message's headers, a validated header block (empty: none).
        var headers: ArraySlice<UInt8> = []
    }

    struct Ack: Equatable, Sendable {
        var stream: UInt64
        var processedUpTo: UInt64
        var receivedUpTo: UInt64
        /// Processed numbers above `processedUpTo + 1`, as closed ranges, ascending and
        /// disjoint (selective acknowledgement of out-of-order application acks).
        var processedRanges: [ClosedRange<UInt64>]
    }

    struct Outcomes: Equatable, Sendable {
        var stream: UInt64
        var entries: [OutcomeEntry]
    }

    struct OutcomeEntry: Equatable, Sendable {
        var sequence: UInt64
        var code: OutcomeCode
        /// Why, in UTF-8 (the application's rejection reason).
        var reason: String
    }

    struct Versions: Equatable, Sendable {
        /// The protocol versions the receiver speaks, ascending, each ≥ 1.
        var supported: [UInt8]
    }

    enum OutcomeCode: UInt8, Sendable {
        /// The receiving application refused the message.
        case rejected = 1
        /// The receiver found the message expired on arrival and did not deliver it.
        case expired = 2
    }

    enum Kind: UInt8, Sendable {
        case hello = 1, welcome = 2, data = 3, ack = 4, outcomes = 5, versions = 6
    }
}

/// Fixed facts of the protocol.
enum Wire {
    static let magic: (UInt8, UInt8) = (0x43, 0x52)  // "CR"
    /// The newest version this node speaks, and the one it starts every stream with.
    static let latestVersion: UInt8 = 2
    /// magic (2) + version (1) + kind (1).
    static let headerSize = 4
    /// CRC-32C trailer.
    static let trailerSize = 4
    /// Version 1: sequence (8) + attempt (4) + flags (1) + expiry (8) + length (4); version 2
    /// adds the header block's length (2).
    static func recordHeaderSize(version: UInt8) -> Int { version >= 2 ? 27 : 25 }
    static let maxRecordsPerFrame = 4096
    /// Payload bytes a sender packs into one DATA frame (a larger record goes alone). Small
    /// enough that frames come from the allocator's reused memory rather than fresh pages
    /// (glibc maps allocations of 128 KiB and more directly), large enough to carry
    /// hundreds of small messages.
    static let frameBudget = 64 << 10
    static let maxRanges = 256
    static let maxOutcomesPerFrame = 1024
    static let maxReasonBytes = 1024

    /// A reason's UTF-8 bytes, at most ``maxReasonBytes``, cut where a character begins: a cut
    /// inside a multibyte character made the sender refuse the OUTCOMES frame as not UTF-8, and
    /// the ACK after it settled a rejected message as processed.
    static func truncatedReason(_ reason: String) -> [UInt8] {
        let bytes = Array(reason.utf8)
        guard bytes.count > maxReasonBytes else { return bytes }
        var end = maxReasonBytes
        while end > 0, bytes[end] & 0xC0 == 0x80 { end -= 1 }  // back off continuation bytes
        return Array(bytes[..<end])
    }
    /// The largest frame a receiver sends back (outcomes with long reasons).
    static let maxControlFrameSize = 2 << 20
    static let tombstoneFlag: UInt8 = 0x01
    /// The versions a node speaks up to `latest`, for VERSIONS answers.
    static func versions(upTo latest: UInt8) -> [UInt8] { Array(1...max(1, latest)) }
    /// The highest sequence number, and the highest mark (processed-up-to, received-up-to,
    /// first-unacknowledged, next sequence), a frame may carry: 2^62. A decoder refuses
    /// anything above it, so that a mark plus a window (at most ``maxWindow``) never
    /// overflows. At a billion messages a second a stream takes 146 years to reach it.
    static let maxSequence: UInt64 = 1 << 62
    /// The largest in-flight window a node may be configured with (2^20 messages).
    static let maxWindow = 1 << 20
}
