public import ServiceLifecycle

/// A Courier node: one process's endpoint for reliable messaging.
///
/// Start one per process and data directory; send to peers with ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)``;
/// receive from ``messages``; watch ``events``. The node runs its own I/O thread (every
/// ZeroMQ socket lives there) and its spool's sync thread, so nothing it does blocks Swift's
/// cooperative thread pool.
///
/// ```swift
/// let node = try await Node.start(configuration)
/// let receipt = try await node.send(Array("hello".utf8), to: "ledger")
/// print(try await receipt.outcome())      // processed
/// for await message in node.messages { handle(message); message.acknowledge() }
/// ```
///
/// A node runs until ``shutdown(timeout:)``: releasing the last reference does not stop its
/// threads. As a `Service` it fits a ServiceLifecycle `ServiceGroup`: ``run()`` returns after a
/// graceful shutdown (stop accepting sends, flush the spool, wait for outstanding
/// acknowledgements up to ``shutdownGracePeriod``, close the sockets).
public final class Node: Sendable, Service {
    let core: NodeCore

    /// How long a graceful shutdown waits for outstanding acknowledgements. Default: 5 s.
    public let shutdownGracePeriod: Duration

    private init(core: NodeCore, shutdownGracePeriod: Duration) {
        self.core = core
        self.shutdownGracePeriod = shutdownGracePeriod
    }

    /// Opens the data directory (locking it), recovers the spool, binds the listen endpoints
    /// and connects to the peers.
    ///
    /// - Throws: ``CourierError/Code/dataDirectoryLocked`` naming the holder's pid when another
    ///   process has the directory; ``CourierError/Code/invalidConfiguration`` or
    ///   ``CourierError/Code/network`` for unusable ids or endpoints;
    ///   ``CourierError/Code/storage`` when the directory cannot be read or written.
    public static func start(
        _ configuration: NodeConfiguration, shutdownGracePeriod: Duration = .seconds(5)
    ) async throws(CourierError) -> Node {
        Node(core: try await NodeCore.start(configuration), shutdownGracePeriod: shutdownGracePeriod)
    }

    /// This node's id.
    public var id: String { core.configuration.id }

    /// The endpoints the node listens on, with wildcard ports resolved.
    public var boundEndpoints: [String] { core.boundEndpoints }

    /// Stores `payload` for `peer` and returns once it is durable under the durability
    /// policy; delivery then proceeds in the background, surviving crashes of either side.
    ///
    /// Suspends while the peer's spool is full, or throws ``CourierError/Code/spoolFull`` if
    /// so configured. Throws ``CourierError/Code/storage`` when the disk fails (nothing
    /// already stored is lost), ``CourierError/Code/unknownPeer``,
    /// ``CourierError/Code/messageTooLarge``, ``CourierError/Code/invalidHeaders`` and
    /// ``CourierError/Code/shutDown``.
    ///
    /// - Parameters:
    ///   - payload: the message's bytes, at most ``NodeConfiguration/maxMessageSize`` (and at
    ///     most what the peer announced, ``PeerStatistics/peerMaxMessageSize``).
    ///   - peer: the receiving node's id, one of ``NodeConfiguration/peers`` or added with
    ///     ``addPeer(_:)``.
    ///   - headers: metadata for the receiver (``IncomingMessage/headers``), stored with the
    ///     message; none by default. See ``MessageHeaders`` for the limits.
    ///   - timeToLive: after this long undelivered, the message expires; `nil` uses
    ///     ``NodeConfiguration/defaultTimeToLive``.
    /// - Returns: the message's ``Receipt``, to await its ``Outcome``.
    public func send(_ payload: [UInt8], to peer: String, headers: MessageHeaders = [:], timeToLive: Duration? = nil) async throws(CourierError) -> Receipt {
        try await core.send([payload], to: peer, headers: headers, timeToLive: timeToLive)[0]
    }

    /// Stores several messages for `peer` in one spool write (and one sync), in order, and
    /// returns once all are durable. Behaves as ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)``
    /// otherwise.
    ///
    /// - Parameters:
    ///   - payloads: the messages' bytes, in the order the receiver gets them.
    ///   - peer: the receiving node's id.
    ///   - headers: the headers of every message of the batch; none by default.
    ///   - timeToLive: after this long undelivered, a message expires; `nil` uses
    ///     ``NodeConfiguration/defaultTimeToLive``.
    /// - Returns: one ``Receipt`` per payload, in order (``Swift/Array/outcomes()`` awaits them all).
    public func send(batch payloads: [[UInt8]], to peer: String, headers: MessageHeaders = [:], timeToLive: Duration? = nil) async throws(CourierError) -> [Receipt] {
        guard !payloads.isEmpty else { return [] }
        return try await core.send(payloads, to: peer, headers: headers, timeToLive: timeToLive)
    }

    /// Messages delivered to this node, in order per stream. Iterate it from one task.
    public var messages: IncomingMessages { core.incoming }

    /// Peer connections, dead letters, corruption and refused frames, as they happen.
    public var events: NodeEvents { core.eventStream }

    /// Starts sending to a peer not in the configuration (or updates its endpoints).
    public func addPeer(_ peer: PeerConfiguration) async throws(CourierError) {
        try await core.addPeer(peer)
    }

    /// Stops sending to a peer. Its spool stays on disk; adding it again resumes delivery.
    /// Waits on its messages' outcomes, current and later, end with
    /// ``CourierError/Code/unknownPeer`` until it is added again.
    public func removePeer(_ id: String) async {
        await core.removePeer(id)
    }

    /// A peer's delivery figures, or nil for an unknown peer.
    public func statistics(for peer: String) -> PeerStatistics? {
        core.statistics(for: peer)
    }

    /// Returns when `peer`'s spool holds nothing pending (messages from earlier runs
    /// included): every message has an outcome.
    public func waitUntilDelivered(to peer: String) async throws(CourierError) {
        try await core.waitUntilDrained(peer)
    }

    /// The outcome of message `id`, waiting for it if it is not known yet: the same as its
    /// ``Receipt/outcome()``, also for messages sent by earlier runs on this data directory
    /// (keep a message's ``Receipt/id`` to ask after a restart).
    ///
    /// What is retained: every message of the peer's current stream. Messages at or below the
    /// acknowledged mark are processed, unless the peer's dead letters record another outcome
    /// (rejected with its reason, expired, dead-lettered); those records are kept even after
    /// `courier-spool requeue` sends the payload again under a new number. A stream ends only
    /// when its spool is wiped; its messages are then ``CourierError/Code/unknownMessage``.
    ///
    /// Throws ``CourierError/Code/unknownPeer``, ``CourierError/Code/unknownMessage``,
    /// ``CourierError/Code/shutDown`` if the node stops first, and
    /// ``CourierError/Code/cancelled`` if the waiting task is cancelled.
    public func outcome(of id: MessageID) async throws(CourierError) -> Outcome {
        try await core.checkedOutcome(of: id)
    }

    /// The outcomes of the messages sent to `peer`, in sequence order, starting after the
    /// last one the application acknowledged with ``acknowledgeOutcomes(through:)``: the way
    /// for a restarted application to learn what became of the messages its earlier runs
    /// sent, without having kept their receipts.
    ///
    /// An iteration first replays the outcome of every message of the peer's current stream
    /// after the durable cursor (earlier runs' messages included), then goes on with new
    /// messages as their outcomes are settled, waiting as needed (``OutcomeReports/Extent/sentSoFar``
    /// stops after the last message sent when it begins). It never skips a number: a message
    /// whose outcome is not known yet holds back the reports after it, and a number not
    /// assigned yet is waited for, never invented.
    ///
    /// ```swift
    /// for try await report in node.outcomes(for: "ledger") {
    ///     if case .rejected(let reason) = report.outcome { reopen(order: report.id, because: reason) }
    ///     try await node.acknowledgeOutcomes(through: report.id)   // or every few hundred
    /// }
    /// ```
    ///
    /// Reporting is at least once: after a crash, or an iteration left before its reports
    /// were acknowledged, the reports after the cursor come again. A damaged cursor file is
    /// reported (``NodeEvent/corruptionFound(description:)``, a warning in the log,
    /// `courier_spool_corruptions_total`), set aside in the spool's quarantine, and counts as
    /// no cursor: reports start again from the stream's first message.
    ///
    /// What is retained: the outcomes of every message of the peer's current stream, as for
    /// ``outcome(of:)``. Messages at or below the spool's acknowledged mark are processed,
    /// unless the peer's dead letters record another outcome (rejected with its reason,
    /// expired, dead-lettered). A wiped spool starts a new stream: its reports start at its
    /// number 1, and the old stream's outcomes are gone (the cursor lives in the peer's
    /// spool directory, and a cursor of another stream counts for nothing).
    ///
    /// Iteration throws ``CourierError/Code/shutDown`` when the node stops,
    /// ``CourierError/Code/unknownPeer`` for a peer not configured (or removed),
    /// ``CourierError/Code/cancelled`` when the waiting task is cancelled, and
    /// ``CourierError/Code/storage`` when the cursor cannot be read; the iteration then ends.
    ///
    /// - Parameters:
    ///   - peer: a configured peer's id.
    ///   - extent: ``OutcomeReports/Extent/continuing`` (the default) to wait for new
    ///     messages forever, ``OutcomeReports/Extent/sentSoFar`` to end after the messages
    ///     sent so far.
    public func outcomes(for peer: String, extent: OutcomeReports.Extent = .continuing) -> OutcomeReports {
        OutcomeReports(core: core, peer: peer, extent: extent)
    }

    /// Moves `id`'s peer's durable outcome cursor to `id`: the application has handled the
    /// reports of ``outcomes(for:extent:)`` up to and including it, and the next iteration
    /// (in this run or after a restart) starts after it.
    ///
    /// Returns once the cursor is durable (written to a temporary file, synced, renamed over
    /// the old one, directory synced: a few syncs, so acknowledge a batch of reports at a
    /// time when they are many). An id at or below the cursor changes nothing. The file work
    /// runs on a thread of its own, never on the cooperative pool.
    ///
    /// Throws ``CourierError/Code/unknownPeer``; ``CourierError/Code/unknownMessage`` for an
    /// id this node never assigned (another stream, a number not sent) or whose outcome is not
    /// known yet (so never reported); ``CourierError/Code/storage`` when the cursor cannot
    /// be written; ``CourierError/Code/shutDown`` once the node has stopped.
    public func acknowledgeOutcomes(through id: MessageID) async throws(CourierError) {
        try await core.acknowledgeOutcomes(through: id)
    }

    /// Stops the node gracefully: refuses new sends, flushes the spool, waits up to
    /// `timeout` for outstanding acknowledgements, then closes sockets and files and
    /// releases the data directory. Idempotent.
    public func shutdown(timeout: Duration? = nil) async {
        await core.shutdown(timeout: timeout ?? shutdownGracePeriod)
    }

    /// Runs the node as a ServiceLifecycle `Service` until it stops.
    ///
    /// - A graceful shutdown (SIGTERM through `ServiceGroup`, or
    ///   `ServiceGroup.triggerGracefulShutdown()`) drains: the node stops accepting sends,
    ///   flushes its spool, waits up to ``shutdownGracePeriod`` for outstanding
    ///   acknowledgements, then closes its sockets, and `run()` returns.
    /// - Cancellation of the task (a `ServiceGroup` cancels its services when one of them
    ///   throws, or when a graceful shutdown overruns its maximum duration) stops the node
    ///   without waiting for acknowledgements: it still flushes the spool and records the
    ///   application's last acknowledgements (about half a second at most), and `run()`
    ///   returns. Nothing accepted by ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)`` is lost; delivery resumes at
    ///   the next start on the same data directory.
    /// - A node shut down by ``shutdown(timeout:)`` makes `run()` return as well.
    public func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await core.waitUntilStopped()
            } onGracefulShutdown: {
                Task { await self.shutdown() }
            }
        } onCancel: {
            core.hurry()
            Task { await self.shutdown(timeout: .zero) }
        }
    }
}
