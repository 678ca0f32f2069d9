import CoreMetrics
import CourierSpool
import Logging
import Synchronization
import SystemPackage
import ZeroMQ

/// The node's shared heart, reachable from any task: configuration, the spool, the
/// mailbox to the I/O thread, outcomes, and the streams handed to the application.
final class NodeCore: Sendable {
    let configuration: NodeConfiguration
    let logger: Logger
    let mailbox = Mailbox()
    let outcomes = OutcomeBook()
    /// The maximum message sizes peers announced below this node's own (send refuses above them).
    let announcedLimits = AnnouncedLimits()
    /// The durable cursors of ``Node/outcomes(for:extent:)``.
    let outcomeCursors = OutcomeCursors()
    let nodeMetrics = NodeMetrics()
    let decoder: WireDecoder
    let directory: DataDirectory
    /// The checked CURVE keys when security is on.
    let keys: SecurityConfiguration.Keys?
    let incoming: IncomingMessages
    let tracker = DeliveryTracker()
    let eventStream: NodeEvents
    private let deliveries = HandOffChannel<DeliveryBatch>()
    private let events: HandOffChannel<NodeEvent>
    private let state: Mutex<State>
    private let refusalLog = Mutex(RefusalLog())
    /// Cancellation: a shutdown in progress stops waiting for acknowledgements.
    private let hurried = OneShotSignal()

    private struct State {
        var logs: [String: OutboundLog]
        var accepting = true
        var stopping = false
        var stopped = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        var bound: [String] = []
    }

    private init(configuration: NodeConfiguration, keys: SecurityConfiguration.Keys?, directory: DataDirectory,
                 logs: [String: OutboundLog], events: HandOffChannel<NodeEvent>) {
        self.configuration = configuration
        self.keys = keys
        self.logger = configuration.logger
        self.directory = directory
        self.decoder = WireDecoder(maxPayloadSize: configuration.maxMessageSize, latestVersion: configuration.latestProtocolVersion)
        self.incoming = IncomingMessages(channel: deliveries, tracker: tracker)
        self.events = events
        self.eventStream = NodeEvents(channel: events)
        self.state = Mutex(State(logs: logs))
    }

    // MARK: Starting

    static func start(_ configuration: NodeConfiguration) async throws(CourierError) -> NodeCore {
        try validate(configuration)
        if configuration.raisesDescriptorLimit { DescriptorLimit.raiseSoftLimit(logger: configuration.logger) }
        let keys = try configuration.security?.validated(nodeID: configuration.id, peers: configuration.peers)
        let events = HandOffChannel<NodeEvent>(keepingNewest: 1024)
        var spool = SpoolConfiguration()
        spool.durability = configuration.durability.policy
        spool.maxPendingBytes = configuration.maxSpoolBytes
        spool.maxPendingMessages = configuration.maxSpoolMessages
        spool.whenFull = configuration.whenSpoolFull.behavior
        // A record: its header, at most 16 KiB of headers (with their length), the payload.
        spool.maxRecordSize = configuration.maxMessageSize + HeaderBlock.maxBytes + 4096
        spool.segmentSize = max(configuration.spoolSegmentSize, spool.maxRecordSize + 4096)
        spool.spareSegments = configuration.spoolSpareFiles
        spool.logger = configuration.logger
        spool.inbound.reservationAhead = configuration.reservationAhead
        spool.inbound.maxStreamsPerSender = configuration.maxStreamsPerSender
        spool.testHooks.bootID = configuration.bootIDForTesting
        spool.onEvent = { event in
            if case .corruptionFound(let report) = event {
                events.send(.corruptionFound(description: report.description))
            }
        }
        let spoolConfiguration = spool
        let opened: Result<(DataDirectory, [PeerConfiguration: OutboundLog]), CourierError>
        do {
            opened = try await DedicatedThread.run(name: "courier-open") {
                do throws(SpoolError) {
                    let directory = try DataDirectory(path: FilePath(configuration.dataDirectory), configuration: spoolConfiguration)
                    var logs: [PeerConfiguration: OutboundLog] = [:]
                    do throws(SpoolError) {
                        for peer in configuration.peers { logs[peer] = try directory.outboundLog(for: peer.id) }
                    } catch {
                        directory.close()
                        throw error
                    }
                    return .success((directory, logs))
                } catch {
                    return .failure(CourierError(spoolError: error, doing: "opening \(configuration.dataDirectory)"))
                }
            }
        } catch {
            throw CourierError(.storage, "cannot start a thread to open the data directory", underlying: error as? ZeroMQError)
        }
        let (directory, logs) = try opened.get()
        let core = NodeCore(configuration: configuration, keys: keys, directory: directory,
                            logs: Dictionary(uniqueKeysWithValues: logs.map { ($0.key.id, $0.value) }),
                            events: events)
        let result: Result<[String], CourierError> = await withCheckedContinuation { started in
            do {
                try DedicatedThread.start(name: "courier-io") {
                    IOLoop.run(core: core, logs: logs) { started.resume(returning: $0) }
                }
            } catch {
                started.resume(returning: .failure(CourierError(.network, "cannot start the I/O thread", underlying: error)))
            }
        }
        switch result {
        case .success(let bound):
            core.state.withLock { $0.bound = bound }
            configuration.logger.info("node started", metadata: [
                "id": "\(configuration.id)", "listen": "\(bound)", "peers": "\(configuration.peers.map(\.id))"])
            return core
        case .failure(let error):
            await core.closeDirectory()
            throw error
        }
    }

    private static func validate(_ configuration: NodeConfiguration) throws(CourierError) {
        try validate(id: configuration.id, what: "node id")
        var seen: Set<String> = []
        for peer in configuration.peers {
            try validate(id: peer.id, what: "peer id")
            guard seen.insert(peer.id).inserted else {
                throw CourierError(.invalidConfiguration, "peer \(peer.id) is listed twice; list each peer once with all its endpoints")
            }
            guard !peer.endpoints.isEmpty else {
                throw CourierError(.invalidConfiguration, "peer \(peer.id) has no endpoint; give at least one, such as tcp://host:7001")
            }
        }
        guard configuration.inFlightWindow >= 1, configuration.inFlightBytes >= 1, configuration.maxMessageSize >= 1 else {
            throw CourierError(.invalidConfiguration, "inFlightWindow, inFlightBytes and maxMessageSize must be at least 1")
        }
        guard configuration.maxStreamsPerSender >= 1, configuration.maxInboundStreams >= 1 else {
            throw CourierError(.invalidConfiguration, "maxStreamsPerSender and maxInboundStreams must be at least 1")
        }
        guard configuration.inFlightWindow <= Wire.maxWindow else {
            throw CourierError(.invalidConfiguration, "inFlightWindow \(configuration.inFlightWindow) is above the protocol's limit of \(Wire.maxWindow) messages; lower it")
        }
    }

    static func validate(id: String, what: String) throws(CourierError) {
        let bytes = Array(id.utf8)
        guard (1...255).contains(bytes.count), bytes.first != 0 else {
            throw CourierError(.invalidConfiguration, "the \(what) \"\(id)\" must be 1–255 bytes of UTF-8 and not start with a zero byte")
        }
    }

    var boundEndpoints: [String] { state.withLock { $0.bound } }

    // MARK: Sending

    func send(_ payloads: [[UInt8]], to peer: String, headers: MessageHeaders, timeToLive: Duration?) async throws(CourierError) -> [Receipt] {
        let log = try sendingLog(for: peer)
        try checkSize(of: payloads, to: peer)
        let expiry = expiry(timeToLive)
        let block = try headers.encoded()
        let entries = payloads.map { SpoolEntry(payload: $0, expiresAt: expiry, headers: block) }
        let result = await withCheckedContinuation { (done: CheckedContinuation<Result<ClosedRange<UInt64>, SpoolError>, Never>) in
            spool(entries, to: peer, log: log) { done.resume(returning: $0) }
        }
        switch result {
        case .success(let range):
            return range.map { Receipt(id: MessageID(peer: peer, stream: log.streamID, sequence: $0), core: self) }
        case .failure(let error):
            throw CourierError(spoolError: error, doing: "spooling for \(peer)")
        }
    }

    /// `peer`'s outbound log, if the node accepts sends and knows the peer.
    func sendingLog(for peer: String) throws(CourierError) -> OutboundLog {
        try state.withLock { state throws(CourierError) in
            guard state.accepting else { throw CourierError(.shutDown, "the node is shutting down and accepts no more sends") }
            guard let log = state.logs[peer] else {
                throw CourierError(.unknownPeer, "no peer \(peer) is configured; add it with addPeer first")
            }
            return log
        }
    }

    /// Refuses a payload above this node's maximum message size, or above the one `peer`
    /// announced (it would drop it).
    func checkSize(of payloads: [[UInt8]], to peer: String) throws(CourierError) {
        var largest = 0
        for payload in payloads where payload.count > largest { largest = payload.count }
        if largest > configuration.maxMessageSize {
            throw CourierError(.messageTooLarge, "a payload of \(largest) bytes is above the maximum message size of \(configuration.maxMessageSize) bytes")
        }
        if let limit = announcedLimits.maxMessageSize(for: peer), largest > limit {
            throw CourierError(.messageTooLarge, "a payload of \(largest) bytes is above the maximum message size of \(limit) bytes that \(peer) announced; send smaller messages or raise its maxMessageSize")
        }
    }

    /// The wall-clock expiry of a message sent now with `timeToLive` (nil: the default).
    func expiry(_ timeToLive: Duration?) -> Int64? {
        (timeToLive ?? configuration.defaultTimeToLive).map { WallClock.deadline(after: $0) }
    }

    /// Appends `entries` to `log` as one unit; once they are durable the I/O thread starts
    /// sending them, and `completion` (on the spool's thread: keep it short) gets their
    /// numbers.
    func spool(_ entries: [SpoolEntry], to peer: String, log: OutboundLog,
               completion: @escaping @Sendable (Result<ClosedRange<UInt64>, SpoolError>) -> Void) {
        let mailbox = self.mailbox
        let outcomes = self.outcomes
        log.append(contentsOf: entries) { result in
            if case .success(let range) = result {
                outcomes.undrain(peer: peer)
                mailbox.post(.durable(peer: peer, range: range, fresh: entries))
            }
            completion(result)
        }
    }

    func outcome(of id: MessageID) async throws(CourierError) -> Outcome {
        try await outcomes.outcome(of: id)
    }

    /// ``outcome(of:)`` for an id from the application: refused unless this node assigned it.
    func checkedOutcome(of id: MessageID) async throws(CourierError) -> Outcome {
        guard let log = state.withLock({ $0.logs[id.peer] }) else {
            throw CourierError(.unknownPeer, "no peer \(id.peer) is configured")
        }
        guard id.stream == log.streamID, id.sequence >= 1, id.sequence < log.nextSequenceNumber else {
            throw CourierError(.unknownMessage, "\(id) was never sent by this node: its stream to \(id.peer) is \(String(log.streamID, radix: 16)) and has numbers 1 to \(log.nextSequenceNumber - 1)")
        }
        return try await outcomes.outcome(of: id)
    }

    /// `peer`'s outbound log, while the peer is configured.
    func log(for peer: String) -> OutboundLog? {
        state.withLock { $0.logs[peer] }
    }

    func settle(sender: String, stream: UInt64, sequence: UInt64, rejection: String?) {
        mailbox.post(Settlement(sender: sender, stream: stream, sequence: sequence, rejection: rejection))
    }

    // MARK: Peers

    func addPeer(_ peer: PeerConfiguration) async throws(CourierError) {
        try Self.validate(id: peer.id, what: "peer id")
        if let keys, keys.keyByID[peer.id] == nil {
            throw CourierError(.invalidConfiguration, "security is on but peer \(peer.id) has no public key in trustedPeers")
        }
        guard !peer.endpoints.isEmpty else {
            throw CourierError(.invalidConfiguration, "peer \(peer.id) has no endpoint")
        }
        let directory = self.directory
        let opened: Result<OutboundLog, CourierError>
        do {
            opened = try await DedicatedThread.run(name: "courier-open") {
                do throws(SpoolError) { return .success(try directory.outboundLog(for: peer.id)) } catch {
                    return .failure(CourierError(spoolError: error, doing: "opening the spool for \(peer.id)"))
                }
            }
        } catch {
            throw CourierError(.storage, "cannot start a thread to open the spool", underlying: error as? ZeroMQError)
        }
        let log = try opened.get()
        try state.withLock { state throws(CourierError) in
            guard !state.stopping else { throw CourierError(.shutDown, "the node is shutting down") }
            state.logs[peer.id] = log
        }
        let mailbox = self.mailbox
        let failure: CourierError? = await withCheckedContinuation { done in
            mailbox.post(.addPeer(peer, log, done: { done.resume(returning: $0) }))
        }
        if let failure { throw failure }
    }

    func removePeer(_ id: String) async {
        _ = state.withLock { $0.logs.removeValue(forKey: id) }
        let mailbox = self.mailbox
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            mailbox.post(.removePeer(id, done: { done.resume() }))
        }
        outcomes.remove(peer: id)
        announcedLimits.forget(peer: id)  // a peer added again under this id announces afresh
    }

    func statistics(for peer: String) -> PeerStatistics? { outcomes.statistics(for: peer) }

    func waitUntilDrained(_ peer: String) async throws(CourierError) {
        try await outcomes.waitUntilDrained(peer)
    }

    // MARK: Called on the I/O thread

    func emit(_ event: NodeEvent) { events.send(event) }

    /// Hands `batch` to the application's iterator.
    func deliver(_ batch: DeliveryBatch) {
        guard !batch.isEmpty else { return }
        nodeMetrics.delivered.increment(by: batch.messages.count)
        deliveries.send(batch)
    }

    /// A frame from the network was refused: count it, report it, and log it, at most one
    /// line per peer and reason every 10 s (``RefusalLog``).
    func refused(from peer: String, reason: String, label: String, hostile: Bool = true) {
        nodeMetrics.refused(label)
        if hostile {
            emit(.hostileFrameDropped(from: peer, reason: reason))
            switch refusalLog.withLock({ $0.refused(peer: peer, reason: label, now: .now) }) {
            case .suppress:
                break
            case .log(let suppressed) where suppressed > 0:
                logger.warning("refused a frame", metadata: [
                    "from": "\(peer)", "reason": "\(reason)",
                    "also-refused": "\(suppressed) more like it since the last line (courier_frames_refused_total counts each)"])
            case .log:
                logger.warning("refused a frame", metadata: ["from": "\(peer)", "reason": "\(reason)"])
            }
        } else {
            logger.debug("ignored a frame", metadata: ["from": "\(peer)", "reason": "\(reason)"])
        }
    }

    /// A sender's stream was retired to keep within ``NodeConfiguration/maxStreamsPerSender``:
    /// count it, report it, and log it at the refusals' rate limit (a sender opening streams
    /// forever would otherwise flood the log).
    func retired(sender: String, stream: UInt64) {
        nodeMetrics.streamsRetired.increment()
        emit(.streamRetired(sender: sender, stream: stream))
        switch refusalLog.withLock({ $0.refused(peer: sender, reason: "stream_retired", now: .now) }) {
        case .suppress: break
        case .log(let suppressed):
            logger.notice("retired a sender's old stream", metadata: [
                "sender": "\(sender)", "stream": "\(String(stream, radix: 16))", "also-retired": "\(suppressed)"])
        }
    }

    // MARK: Stopping

    func shutdown(timeout: Duration) async {
        let (first, logs) = state.withLock { state in
            defer { state.accepting = false; state.stopping = true }
            return (!state.stopping, Array(state.logs))
        }
        guard first else { return await waitUntilStopped() }
        logger.info("node shutting down", metadata: ["id": "\(configuration.id)"])
        tracker.stop()
        for (_, log) in logs { try? await log.flush() }
        let clock = ContinuousClock()
        let end = clock.now + timeout
        // Until every peer is drained, the timeout passes, or the task running the node is
        // cancelled, whichever comes first.
        let (outcomes, hurried, peers) = (self.outcomes, self.hurried, logs.map(\.key))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for peer in peers { try? await outcomes.waitUntilDrained(peer) } }
            group.addTask { try? await Task.sleep(until: end, clock: clock) }
            group.addTask { await hurried.wait() }
            await group.next()
            group.cancelAll()
        }
        // Settled incoming messages still get recorded and acknowledged, briefly even when
        // the timeout is spent, so that a consumer's last acknowledgements are not lost.
        mailbox.post(.stop(deadline: max(end, clock.now + .milliseconds(500))))
        await waitUntilStopped()
    }

    /// Task cancellation: stop now. Refuses sends at once; a shutdown in progress stops
    /// waiting for outstanding acknowledgements (the spool still holds every accepted
    /// message, so nothing is lost; the next start resumes delivery).
    func hurry() {
        hurried.fire()
    }

    /// The I/O thread has closed its sockets: release the directory and end the streams.
    func ioThreadStopped() {
        outcomes.closeAll()
        // After any cursor write in progress, before the directory's lock is released.
        outcomeCursors.close()
        directory.close()
        deliveries.finish()
        events.finish()
        let waiters = state.withLock { state in
            state.stopped = true
            state.stopping = true
            state.accepting = false
            defer { state.stopWaiters = [] }
            return state.stopWaiters
        }
        logger.info("node stopped", metadata: ["id": "\(configuration.id)"])
        for waiter in waiters { waiter.resume() }
    }

    func waitUntilStopped() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { state in
                if !state.stopped { state.stopWaiters.append(waiter) }
                return state.stopped
            }
            if stopped { waiter.resume() }
        }
    }

    private func closeDirectory() async {
        let directory = self.directory
        _ = try? await DedicatedThread.run(name: "courier-close") { directory.close() }
    }
}

extension NodeCore: Hashable {
    static func == (lhs: NodeCore, rhs: NodeCore) -> Bool { lhs === rhs }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

extension CourierError {
    /// Translates a spool failure into what the application should know.
    init(spoolError error: SpoolError, doing what: String) {
        let code: Code = switch error.code {
        case .spoolFull: .spoolFull
        case .locked: .dataDirectoryLocked
        case .closed: .shutDown
        case .recordTooLarge: .messageTooLarge
        case .invalidArgument: .invalidConfiguration
        default: .storage
        }
        self.init(code, "\(what): \(error.message)", underlying: error)
    }
}
