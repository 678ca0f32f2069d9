public import Logging

/// Everything a ``Node`` needs: who it is, where it keeps its data, whom it talks to, and
/// the limits and timings of delivery.
///
/// ```swift
/// var configuration = NodeConfiguration(id: "billing", dataDirectory: "/var/lib/billing")
/// configuration.listen = ["tcp://0.0.0.0:7001"]
/// configuration.peers = [PeerConfiguration(id: "ledger", endpoints: ["tcp://ledger:7001"])]
/// let node = try await Node.start(configuration)
/// ```
public struct NodeConfiguration: Sendable {
    /// This node's id: UTF-8, 1–255 bytes, not starting with a zero byte. It is the ZeroMQ
    /// routing id peers see, and must stay the same across restarts.
    public var id: String
    /// The directory holding the spool and deduplication state. One node at a time.
    public var dataDirectory: String
    /// Endpoints the node's ROUTER binds to receive (`tcp://HOST:PORT`, `ipc:///PATH`).
    /// Default: none (a send-only node).
    public var listen: [String] = []
    /// The peers this node sends to. More can be added at run time with ``Node/addPeer(_:)``.
    /// Default: none.
    public var peers: [PeerConfiguration] = []
    /// When an accepted message counts as stored. Default: ``Durability/groupCommit``.
    public var durability: Durability = .groupCommit
    /// Most messages per peer sent but not yet processed by the receiver; also the most a
    /// receiver buffers per stream. The window must cover the round trip (send, deliver,
    /// acknowledge, record, acknowledge back) at the rate you want: throughput is at most
    /// window ÷ round-trip time. Give both sides the same window: a receiver drops numbers
    /// beyond its own window, so a sender with a larger one sends them again after a
    /// retransmission timeout, each time as a new attempt (counted against ``maxAttempts``).
    /// At most 1,048,576 (2^20). Default: 8192.
    public var inFlightWindow: Int = 8192
    /// Most payload bytes per peer sent but not yet processed by the receiver (a message
    /// larger than this still goes, alone). Bounds what a receiver buffers for a stream
    /// when messages are large. Default: 16 MiB.
    public var inFlightBytes: Int = 16 << 20
    /// Most bytes pending per peer in the spool. Default: 1 GiB.
    public var maxSpoolBytes: Int64 = 1 << 30
    /// Most messages pending per peer in the spool. Default: 10,000,000.
    public var maxSpoolMessages: Int = 10_000_000
    /// Size at which a peer's spool file is rolled. Acknowledged space is given back a whole
    /// file at a time, so up to this much stays on disk after everything was delivered; keep
    /// it well below the free space of small disks (and see ``spoolSpareFiles``). Default: 8 MiB.
    public var spoolSegmentSize: Int = 8 << 20
    /// Acknowledged spool files each peer keeps to reuse for new ones, instead of deleting
    /// them: writing over a file's existing blocks makes each sync cheaper than growing a
    /// new file. A spare unused for 10 seconds is deleted, and all are on a full disk.
    /// 0 deletes acknowledged files at once. Between 0 and 64. Default: 2.
    public var spoolSpareFiles: Int = 2
    /// What `send` does when a peer's spool is full: wait for room, or throw
    /// ``CourierError/Code/spoolFull``. Default: ``WhenSpoolFull/wait``.
    public var whenSpoolFull: WhenSpoolFull = .wait
    /// Largest payload accepted, sent or received. Nodes that talk to each other should use
    /// the same value: a receiver refuses (and counts) larger payloads, and they are then
    /// retried until they run out of attempts. Default: 1 MiB.
    public var maxMessageSize: Int = 1 << 20
    /// The newest protocol version this node speaks (docs/PROTOCOL.md, "Versioning"): 2.
    /// Package-level, for tests that need a node from before version 2 (1 makes this node
    /// refuse version-2 frames and answer them with VERSIONS, as such a node does).
    package var latestProtocolVersion: UInt8 = Wire.latestVersion
    /// Retransmission timing. Default: see ``RetransmissionPolicy``.
    public var retransmission = RetransmissionPolicy()
    /// Time-to-live of messages sent without one; `nil`: messages never expire. Default: nil.
    public var defaultTimeToLive: Duration? = nil
    /// Transmissions of a message before it is dead-lettered; `nil`: no limit. A message the
    /// receiver holds (received, not yet finished by its application) is not sent again,
    /// however long it takes. What is sent again after a timeout starts at the first number
    /// the receiver lacks and includes everything sent after it, so a message the receiver
    /// drops (larger than its ``maxMessageSize``, beyond its ``inFlightWindow``) uses up
    /// attempts of the messages behind it too. Default: nil.
    public var maxAttempts: Int? = nil
    /// ZeroMQ connection heartbeats. Default: see ``HeartbeatConfiguration``.
    public var heartbeat = HeartbeatConfiguration()
    /// The most streams whose deduplication state a receiver keeps per sender. A sender has
    /// one live stream per receiver; a new one replaces it when the sender's spool is wiped.
    /// When a sender opens one more, the receiver retires the state of that sender's least
    /// recently active stream (memory at once, disk at the journal's next compaction),
    /// reporting ``NodeEvent/streamRetired(sender:stream:)``. Bounds what a sender that opens
    /// streams forever can make a receiver hold. Default: 4.
    public var maxStreamsPerSender: Int = 4
    /// The most streams a receiver tracks in all. A HELLO for a new stream beyond it is
    /// refused (counted as `stream_limit`, logged, reported) until streams are retired.
    /// Without security anyone can open streams under any id and fill this; with security
    /// only the allow-listed senders can, each up to ``maxStreamsPerSender``. Default: 10,000.
    public var maxInboundStreams: Int = 10_000
    /// Longest a new connection may take to complete its ZeroMQ handshake (and CurveZMQ
    /// authentication) before it is closed. Bounds how long idle or half-open connections
    /// hold a file descriptor during a connection flood. Default: 10 s.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Raise the process's soft limit on open file descriptors to its hard limit at start
    /// (as Go's runtime and many servers do), so that a flood of connections exhausts the
    /// hard limit rather than a shell's default of 1,024. Logged when it changes anything.
    /// Default: true.
    public var raisesDescriptorLimit = true
    /// How acknowledgements are coalesced on the receiving side. Default: see ``AckCoalescing``.
    public var ackCoalescing = AckCoalescing()
    /// How far ahead of what it hands out the receiver keeps a synced reservation ceiling
    /// under group commit, so that a hand-out needs no fsync: after an operating-system crash
    /// or power loss at most this many messages per sender may come flagged `redelivered`
    /// without having been handed out (after a process crash, none). 0 syncs each
    /// reservation before the hand-out. See docs/SPOOL-FORMAT.md, "Inbound journal".
    /// Default: 8,192.
    public var reservationAhead: Int = 8192
    /// Replaces the operating system's boot id (16 bytes) in the deduplication journal, to
    /// simulate a reboot between two runs. For tests.
    @_spi(Testing) public var bootIDForTesting: [UInt8]? = nil
    /// CurveZMQ encryption and peer authentication; `nil` leaves connections in plain text
    /// and unauthenticated (any process that can reach the listen endpoints can send, and a
    /// process connecting with another node's id takes that id over). Default: nil.
    public var security: SecurityConfiguration? = nil
    /// Where the node logs. Default: a logger labelled `courier`.
    public var logger = Logger(label: "courier")

    /// A configuration with defaults for everything but the node's identity and directory.
    public init(id: String, dataDirectory: String) {
        self.id = id
        self.dataDirectory = dataDirectory
    }
}

/// A peer this node sends to.
public struct PeerConfiguration: Sendable, Hashable {
    /// The peer's node id (its routing id).
    public var id: String
    /// Where its ROUTER listens; the DEALER connects to every one.
    public var endpoints: [String]

    /// A peer with its node id and the endpoints its ROUTER listens on (`tcp://host:port`, `ipc://path`).
    public init(id: String, endpoints: [String]) {
        self.id = id
        self.endpoints = endpoints
    }
}

/// Retransmission timing (RFC 6298 style, with exponential back-off and jitter). When the
/// timeout passes with messages sent that the receiver has not reported as received, the
/// sender asks the receiver where it stands (HELLO), sends nothing until the answer comes
/// (asking again at each timeout, with back-off up to ``maximumTimeout``), and then resends
/// from the first number the answer lacks.
public struct RetransmissionPolicy: Sendable, Hashable {
    /// The timeout before any round trip has been measured. Default: 500 ms.
    public var initialTimeout: Duration = .milliseconds(500)
    /// The smallest timeout, however fast the round trip. Default: 50 ms.
    public var minimumTimeout: Duration = .milliseconds(50)
    /// The cap of the back-off. Default: 10 s.
    public var maximumTimeout: Duration = .seconds(10)

    /// The defaults given with each property.
    public init() {}
}

/// ZeroMQ heartbeats on every connection.
public struct HeartbeatConfiguration: Sendable, Hashable {
    /// How often an idle connection is pinged. Default: 1 s.
    public var interval: Duration = .seconds(1)
    /// How long without an answer before the connection is dropped. Default: 5 s.
    public var timeout: Duration = .seconds(5)

    /// The defaults given with each property.
    public init() {}
}

/// When a receiver sends a coalesced acknowledgement.
public struct AckCoalescing: Sendable, Hashable {
    /// At most this long after the first unacknowledged processed message. Zero sends
    /// one acknowledgement for each group of marks the store made durable together, which
    /// under load already covers hundreds of messages. Default: zero.
    public var delay: Duration = .zero
    /// Or as soon as this many messages await acknowledgement. Default: 128.
    public var count: Int = 128
    /// Messages received but not yet finished by the application (a slow consumer, a
    /// stalled store) are acknowledged as *received* at most this long after they arrive,
    /// so that the sender's retransmission timer does not run out on them (which costs a
    /// question and a pause in sending; older senders resend everything in flight); only
    /// the processed mark completes them. Keep it well below
    /// the sender's ``RetransmissionPolicy/minimumTimeout``. Default: 10 ms.
    public var receiptDelay: Duration = .milliseconds(10)

    /// The defaults given with each property.
    public init() {}
}
