import CoreMetrics
import CourierSpool
import Logging
import ZeroMQ

/// The sending side of one peer, owned by the I/O thread: its DEALER socket and monitor, its
/// spool, and the ``SenderStream`` whose actions it carries out. The protocol's rules live
/// in the stream; this class only moves frames, records and outcomes between it and the
/// world.
final class OutboundPeer {
    let id: String
    let log: OutboundLog
    let dealer: Socket
    let monitor: Monitor
    let metrics: PeerMetrics
    var machine: SenderStream
    /// Records spooled in this run and not sent yet, as `send` gave them.
    var fresh: FreshRecords
    let core: NodeCore
    let logger: Logger
    var statistics: PeerStatistics
    var publishedStatistics: PeerStatistics?
    var drainedGeneration = -1
    /// Decided numbers whose dead letter was not stored, above the spool's mark: their
    /// outcomes stay in the book when the mark passes them.
    var unrecordedLetters: Set<UInt64> = []

    init(configuration: PeerConfiguration, log: OutboundLog, context: Context, core: NodeCore) throws(CourierError) {
        self.id = configuration.id
        self.log = log
        self.core = core
        self.logger = core.logger
        self.metrics = PeerMetrics(peer: configuration.id)
        let settings = core.configuration
        do {
            dealer = try Socket(.dealer, context: context)
            try dealer.set(.routingID, Array(settings.id.utf8))
            try dealer.set(.immediate, true)
            try dealer.set(.sendHighWaterMark, 1000)
            try dealer.set(.maxMessageSize, Int64(Wire.maxControlFrameSize))
            try dealer.set(.reconnectInterval, .milliseconds(100))
            try dealer.set(.reconnectIntervalMax, .seconds(2))
            try dealer.set(.heartbeatInterval, settings.heartbeat.interval)
            try dealer.set(.heartbeatTimeout, settings.heartbeat.timeout)
            try dealer.set(.heartbeatTTL, settings.heartbeat.timeout * 2)
            try dealer.set(.handshakeInterval, settings.handshakeTimeout)
            if let keys = core.keys, let serverKey = keys.keyByID[configuration.id] {
                try dealer.set(.curveServerKey, serverKey)
                try dealer.set(.curvePublicKey, keys.own.publicKey)
                try dealer.set(.curveSecretKey, keys.own.secretKey)
            }
            monitor = try dealer.monitor()
            for endpoint in configuration.endpoints { try dealer.connect(endpoint) }
        } catch {
            throw CourierError(.network, "cannot set up the connection to peer \(configuration.id)", underlying: error)
        }
        let now = ContinuousClock.now
        machine = SenderStream(
            stream: log.streamID,
            settings: .init(window: settings.inFlightWindow, inFlightBytes: settings.inFlightBytes,
                            maxAttempts: settings.maxAttempts, retransmission: settings.retransmission,
                            protocolVersion: settings.latestProtocolVersion),
            durableUpTo: log.nextSequenceNumber - 1, processedUpTo: log.acknowledgedUpTo,
            now: now, seed: UInt64.random(in: .min ... .max))
        // At most a window's worth: what goes out next when the window opens.
        fresh = FreshRecords(maxCount: settings.inFlightWindow, maxBytes: max(settings.inFlightBytes / 2, 1 << 20))
        statistics = PeerStatistics(
            peer: id, connected: false, since: now, stream: log.streamID, pending: 0, pendingBytes: 0,
            inFlight: 0, processed: 0, rejected: 0, expired: 0, deadLettered: 0, retransmitted: 0, roundTripTime: nil,
            protocolVersion: nil, peerWindow: nil, peerMaxMessageSize: nil)
        // Numbers decided by earlier runs keep their outcomes: the dead letters say which.
        let earlier = log.deadLetters.outcomes(streamID: log.streamID).mapValues(Outcome.init(deadLetter:))
        machine.restore(decided: earlier)
        // Attempts go on counting from where earlier runs left them (attempts.log).
        machine.restore(attempts: log.sentAttempts)
        let (deadLetters, stream) = (log.deadLetters, log.streamID)
        core.outcomes.open(peer: id, stream: stream, processedUpTo: machine.processedUpTo, decided: earlier) { sequence in
            deadLetters.outcome(streamID: stream, sequence: sequence).map(Outcome.init(deadLetter:))
        }
    }

    var stream: UInt64 { machine.stream }

    func close() {
        // The last counts of this run, for the next (the spool writes them as it closes).
        if let attempts = machine.attemptsToRecord(now: nil) { log.recordAttempts(attempts) }
        monitor.close()
        dealer.close()
    }

    // MARK: Events

    /// Records `range` are durable: they may go on the wire.
    func durable(_ range: ClosedRange<UInt64>, fresh entries: [SpoolEntry]) {
        machine.durable(upTo: range.upperBound)
        fresh.add(range, entries, at: WallClock.nanoseconds)
    }

    /// The dead letters of `sequences` are stored, but for `unrecorded`: the spool may let
    /// their records go.
    func deadLettersStored(_ sequences: [UInt64], unrecorded: [UInt64]) {
        unrecordedLetters.formUnion(unrecorded)
        for sequence in sequences { machine.deadLetterStored(sequence) }
    }

    /// A monitor event for the DEALER.
    func handle(_ event: MonitorEvent) {
        var actions: [SenderStream.Action] = []
        switch event.kind {
        case .handshakeSucceeded:
            machine.connectionChanged(.handshakeSucceeded, now: .now, into: &actions)
        case .disconnected:
            machine.connectionChanged(.disconnected, now: .now, into: &actions)
        case .handshakeFailedAuth, .handshakeFailedProtocol, .handshakeFailedNoDetail:
            logger.warning("handshake with peer failed", metadata: ["peer": "\(id)", "event": "\(event)"])
        default:
            break
        }
        perform(actions)
    }

    /// A frame that arrived on the DEALER (from the peer's ROUTER).
    func receive(_ message: Message) {
        var actions: [SenderStream.Action] = []
        guard message.frames.count == 1 else {
            core.refused(from: id, reason: "\(message.frames.count) frames instead of 1", label: "frame_count")
            machine.unreadableFrame(now: .now)
            return
        }
        let frame: WireFrame
        do { frame = try core.decoder.decode(message.frames[0]) } catch {
            core.refused(from: id, reason: error.description, label: error.metricLabel)
            // Possibly verdicts: the peer is asked again before any acknowledgement counts.
            machine.unreadableFrame(now: .now)
            return
        }
        if case .ack(let ack) = frame {
            logger.trace("acknowledgement", metadata: ["peer": "\(id)", "processed-up-to": "\(ack.processedUpTo)", "received-up-to": "\(ack.receivedUpTo)"])
        }
        machine.received(frame, now: .now, into: &actions)
        perform(actions)
    }

    // MARK: Actions

    /// Carries out what the stream asked for, in order, except that its outcome reports
    /// are published together (one look at the book for a frame's rejections, not one per
    /// number): before the spool's mark moves, and at the end.
    func perform(_ actions: [SenderStream.Action]) {
        var decided: [DeadLetterStore.Decision] = []
        var report: (processedUpTo: UInt64, individually: [(UInt64, Outcome)])?
        for action in actions {
            switch action {
            case .report(let processedUpTo, let individually):
                if var merged = report {
                    merged.processedUpTo = max(merged.processedUpTo, processedUpTo)
                    merged.individually += individually
                    report = merged
                } else {
                    report = (processedUpTo, individually)
                }
                continue
            case .acknowledgeSpool:
                if let pending = report { publish(pending) }
                report = nil
            default:
                break
            }
            perform(action, decided: &decided)
        }
        if let report { publish(report) }
        if !decided.isEmpty {
            count(decided)
            storeDeadLetters(decided)
        }
    }

    /// Publishes outcomes settled by the stream: the counts first, so that a task woken by
    /// an outcome reads statistics that include it.
    private func publish(_ report: (processedUpTo: UInt64, individually: [(UInt64, Outcome)])) {
        publishCounters()
        core.outcomes.settle(peer: id, processedUpTo: report.processedUpTo, individually: report.individually)
    }

    private func perform(_ action: SenderStream.Action, decided: inout [DeadLetterStore.Decision]) {
        switch action {
        case .report:
            break  // merged by perform(_:), and published there
        case .countProcessed(let count):
            metrics.processed.increment(by: count)
        case .deadLetter(let sequence, _, let reason, let record):
            decided.append(DeadLetterStore.Decision(sequence: sequence, reason: reason, record: record))
        case .acknowledgeSpool(let mark):
            do {
                _ = try log.acknowledge(upTo: mark)
                machine.spoolAcknowledged(upTo: mark, now: .now)
                // Dead letters up to the mark are stored: they answer for those outcomes.
                let through = core.outcomes.forgetRecorded(peer: id, upTo: mark, except: unrecordedLetters)
                if !unrecordedLetters.isEmpty { unrecordedLetters = unrecordedLetters.filter { $0 > through } }
            } catch {
                logger.error("cannot record the acknowledged mark", metadata: ["peer": "\(id)", "error": "\(error)"])
            }
        case .refused(let reason, let label):
            core.refused(from: id, reason: reason, label: label)
        case .unsupportedProtocol(let versions, let firstReport):
            core.nodeMetrics.refused("peer_version")
            core.emit(.unsupportedProtocol(peer: id, peerVersions: versions.map(Int.init)))
            if firstReport {
                logger.error("peer speaks no protocol version this node does; nothing is delivered to it until one side is changed", metadata: [
                    "peer": "\(id)", "peer-versions": "\(versions)", "own-versions": "\(Wire.versions(upTo: core.configuration.latestProtocolVersion))"])
            }
        case .protocolVersion(let version, let versions):
            logger.notice("peer does not speak the newest protocol version; this connection speaks an older one", metadata: [
                "peer": "\(id)", "version": "\(version)", "peer-versions": "\(versions)"])
        case .peerLimits(let window, let maxMessageSize):
            statistics.peerWindow = window
            statistics.peerMaxMessageSize = maxMessageSize
            core.outcomes.publish(statistics)
            publishedStatistics = statistics
            // send() refuses what the peer would not take.
            core.announcedLimits.record(peer: id, maxMessageSize: maxMessageSize, own: core.configuration.maxMessageSize)
            if window < core.configuration.inFlightWindow || maxMessageSize < core.configuration.maxMessageSize {
                logger.notice("peer announced smaller limits than this node's; sending keeps to them", metadata: [
                    "peer": "\(id)", "peer-window": "\(window)", "peer-max-message-size": "\(maxMessageSize)"])
            }
        case .connected(let resumeAt):
            publishStatistics()  // connected, and in which version, before anyone hears of it
            core.emit(.peerConnected(peer: id))
            logger.info("peer connected", metadata: ["peer": "\(id)", "resume-at": "\(resumeAt)", "protocol-version": "\(machine.version)"])
        case .disconnected:
            publishStatistics()
            core.emit(.peerDisconnected(peer: id))
        case .timedOut(let receivedUpTo, let timeout):
            logger.debug("retransmission timeout", metadata: ["peer": "\(id)", "received-up-to": "\(receivedUpTo)", "rto": "\(timeout)"])
        case .askedProcessed(let processedUpTo):
            logger.debug("asking the peer where it stands: everything sent was received, not all is known processed", metadata: [
                "peer": "\(id)", "processed-up-to": "\(processedUpTo)"])
        case .roundTrip(let sample):
            metricsRoundTrip(sample)
        }
    }

    /// Counts the outcomes decided by one round of actions, once per kind.
    private func count(_ decided: [DeadLetterStore.Decision]) {
        var (rejected, expired, deadLettered) = (0, 0, 0)
        for decision in decided {
            switch decision.reason.kind {
            case .rejected: rejected += 1
            case .expired: expired += 1
            default: deadLettered += 1
            }
        }
        if rejected > 0 { metrics.rejected.increment(by: rejected) }
        if expired > 0 { metrics.expired.increment(by: expired) }
        if deadLettered > 0 { metrics.deadLettered.increment(by: deadLettered) }
    }

    /// Stores decided numbers' records as dead letters on the spool's thread, as one job
    /// (never here: the write is synced), then tells the I/O thread, so that the spool keeps
    /// each record until its dead letter is durable.
    private func storeDeadLetters(_ decided: [DeadLetterStore.Decision]) {
        let (peer, stream, mailbox, logger, core) = (id, machine.stream, core.mailbox, logger, core)
        log.deadLetters.add(decided, streamID: stream) { result in
            switch result {
            case .success(let letters):
                for (sequence, letter) in letters {
                    if let letter { core.emit(.deadLettered(MessageID(peer: peer, stream: stream, sequence: sequence), Outcome(deadLetter: letter.reason))) }
                }
                let unrecorded = letters.compactMap { $0.1 == nil ? $0.0 : nil }
                mailbox.post(.deadLettersStored(peer: peer, sequences: decided.map(\.sequence), unrecorded: unrecorded))
            case .failure(let error):
                logger.error("cannot store dead letters", metadata: ["peer": "\(peer)", "sequences": "\(decided.map(\.sequence))", "error": "\(error)"])
                let sequences = decided.map(\.sequence)
                mailbox.post(.deadLettersStored(peer: peer, sequences: sequences, unrecorded: sequences))
            }
        }
    }
}

extension Outcome {
    /// The outcome a dead letter records.
    init(deadLetter reason: DeadLetterReason) {
        switch reason.kind {
        case .rejected: self = .rejected(reason: reason.text)
        case .expired: self = .expired
        default: self = .deadLettered(reason: reason.text)
        }
    }
}
