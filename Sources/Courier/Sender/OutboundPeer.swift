import CoreMetrics
import CourierSpool
import Logging
import ZeroMQ

/// The sending side of one peer, owned by the I/O thread: its DEALER socket, its spool, and
/// where its stream stands on the wire.
///
/// Invariants: only records at or below ``durableUpTo`` are ever sent; at most the in-flight
/// window is outstanding beyond ``processedUpTo``; a number's outcome is published once, when
/// an acknowledgement covers it.
final class OutboundPeer {
    let id: String
    let log: OutboundLog
    let stream: UInt64
    private(set) var endpoints: [String]
    let dealer: Socket
    let monitor: Monitor
    let core: NodeCore
    let metrics: PeerMetrics

    // Connection state.
    var welcomed = false
    var helloDue: ContinuousClock.Instant? = .now
    /// A retransmission timeout asked where the receiver stands: no DATA goes until its
    /// WELCOME answers, so that the answer covers everything sent and only what it lacks
    /// goes again.
    var awaitingWelcome = false
    /// HELLOs sent since the last WELCOME taken as an answer, and WELCOMEs still to come for
    /// HELLOs sent before that answer (late: they predate DATA sent since, so they only move
    /// marks forward). Each WELCOME taken as late also counts against the HELLOs sent since,
    /// so a lost answer makes the count too high for one question at most.
    var hellosUnanswered = 0
    var lateWelcomes = 0
    var connectedSince = ContinuousClock.now
    /// The peer's "unsupported version" answer was logged (once per run; events report each).
    var reportedVersions = false

    // Stream state.
    var durableUpTo: UInt64
    private(set) var processedUpTo: UInt64
    var processedAbove: Set<UInt64> = []
    var receivedUpTo: UInt64 = 0
    var nextToSend: UInt64
    var highestSent: UInt64 = 0
    /// Attempts, first-send times and bytes of the numbers in flight.
    var ledger: InFlightLedger
    /// Records spooled in this run and not sent yet, as `send` gave them.
    var fresh: FreshRecords
    /// Outcomes decided (and published) before an acknowledgement finishes the number.
    var decided: [UInt64: Outcome] = [:]
    /// Numbers never stored (sequence reservations after a crash): finished silently.
    var silent: Set<UInt64> = []
    var rtt: RoundTripEstimator
    var retransmitDue: ContinuousClock.Instant?
    var spoolAcknowledgedUpTo: UInt64
    var spoolAcknowledgedAt = ContinuousClock.now
    var random = SystemRandomNumberGenerator()
    var statistics: PeerStatistics
    var publishedStatistics: PeerStatistics?
    var drainedGeneration = -1

    init(configuration: PeerConfiguration, log: OutboundLog, context: Context, core: NodeCore) throws(CourierError) {
        self.id = configuration.id
        self.log = log
        self.stream = log.streamID
        self.endpoints = configuration.endpoints
        self.core = core
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
        durableUpTo = log.nextSequenceNumber - 1
        processedUpTo = log.acknowledgedUpTo
        spoolAcknowledgedUpTo = processedUpTo
        nextToSend = processedUpTo + 1
        ledger = InFlightLedger(after: processedUpTo)
        // At most a window's worth: what goes out next when the window opens.
        fresh = FreshRecords(maxCount: settings.inFlightWindow, maxBytes: max(settings.inFlightBytes / 2, 1 << 20))
        rtt = RoundTripEstimator(policy: settings.retransmission)
        statistics = PeerStatistics(
            peer: id, connected: false, since: .now, stream: stream, pending: 0, pendingBytes: 0,
            inFlight: 0, processed: 0, rejected: 0, expired: 0, deadLettered: 0, retransmitted: 0, roundTripTime: nil)
        core.outcomes.open(peer: id, stream: stream, processedUpTo: processedUpTo)
    }

    func close() {
        monitor.close()
        dealer.close()
    }

    /// Records `range` are durable: they may go on the wire.
    func durable(_ range: ClosedRange<UInt64>, fresh entries: [SpoolEntry]) {
        durableUpTo = max(durableUpTo, range.upperBound)
        fresh.add(range, entries, at: WallClock.nanoseconds)
    }

    // MARK: Connection events

    /// A monitor event for the DEALER.
    func handle(_ event: MonitorEvent) {
        switch event.kind {
        case .handshakeSucceeded:
            welcomed = false
            helloDue = .now
            (hellosUnanswered, lateWelcomes) = (0, 0)
        case .disconnected:
            if welcomed { core.emit(.peerDisconnected(peer: id)) }
            if welcomed || statistics.connected { connectedSince = .now }
            welcomed = false
            helloDue = .now
            (hellosUnanswered, lateWelcomes) = (0, 0)
        case .handshakeFailedAuth, .handshakeFailedProtocol, .handshakeFailedNoDetail:
            core.logger.warning("handshake with peer failed", metadata: ["peer": "\(id)", "event": "\(event)"])
        default:
            break
        }
    }

    /// A frame that arrived on the DEALER (from the peer's ROUTER).
    func receive(_ message: Message) {
        guard message.frames.count == 1 else {
            core.refused(from: id, reason: "\(message.frames.count) frames instead of 1", label: "frame_count")
            return
        }
        let frame: WireFrame
        do { frame = try core.decoder.decode(message.frames[0]) } catch {
            core.refused(from: id, reason: error.description, label: error.metricLabel)
            return
        }
        switch frame {
        case .welcome(let welcome) where welcome.stream == stream: handleWelcome(welcome)
        case .ack(let ack) where ack.stream == stream: handleAck(ack)
        case .outcomes(let outcomes) where outcomes.stream == stream: handleOutcomes(outcomes)
        case .versions(let versions):
            unsupportedProtocol(peerVersions: versions.supported)
        case .welcome, .ack, .outcomes:
            core.refused(from: id, reason: "answer for another stream", label: "wrong_stream")
        case .hello, .data:
            core.refused(from: id, reason: "a sender's frame sent to a sender", label: "wrong_direction")
        }
    }

    /// The peer answered that it does not speak this node's protocol version. Nothing can be
    /// delivered until one side changes; HELLOs go on with back-off in case it is upgraded.
    private func unsupportedProtocol(peerVersions: [UInt8]) {
        core.nodeMetrics.refused("peer_version")
        core.emit(.unsupportedProtocol(peer: id, peerVersions: peerVersions.map(Int.init)))
        if !reportedVersions {
            reportedVersions = true
            core.logger.error("peer does not speak this node's protocol version; nothing is delivered to it until one side is changed", metadata: [
                "peer": "\(id)", "peer-versions": "\(peerVersions)", "own-version": "\(Wire.version)"])
        }
    }

    private func handleWelcome(_ welcome: WireFrame.Welcome) {
        guard welcome.receivedUpTo < log.nextSequenceNumber else {
            core.refused(from: id, reason: "welcome claims numbers never sent", label: "impossible_ack")
            return
        }
        let holds = max(welcome.receivedUpTo, welcome.processedUpTo)
        if lateWelcomes > 0 || (welcomed && !awaitingWelcome) {
            // A late answer to a HELLO sent before the answer taken: it may predate DATA
            // sent since, so it only moves marks forward.
            lateWelcomes = max(0, lateWelcomes - 1)
            hellosUnanswered = max(0, hellosUnanswered - 1)
            received(upTo: holds, now: .now, sampling: false)
            advanceProcessed(to: welcome.processedUpTo, ranges: [])
            if welcomed && awaitingWelcome && receivedUpTo >= highestSent {
                // Whichever HELLO this answers, the receiver holds everything sent: the
                // question is settled, with nothing to resend.
                awaitingWelcome = false
                helloDue = nil
            }
            return
        }
        // A new connection (the receiver may have restarted: what it holds is exactly what
        // it says now) or the answer to a timeout's HELLO (on one connection what a receiver
        // holds only grows, so an answer taken for the wrong HELLO cannot move it back).
        lateWelcomes = max(0, hellosUnanswered - 1)
        hellosUnanswered = 0
        if welcomed { rtt.progressed() }  // the peer answers: end the timeouts' back-off
        receivedUpTo = welcomed ? max(receivedUpTo, holds) : holds
        ledger.forgetSendTimes()
        advanceProcessed(to: welcome.processedUpTo, ranges: [])
        nextToSend = max(receivedUpTo, processedUpTo) + 1
        highestSent = max(highestSent, receivedUpTo)
        if !welcomed {
            welcomed = true
            connectedSince = .now
            core.emit(.peerConnected(peer: id))
            core.logger.info("peer connected", metadata: ["peer": "\(id)", "resume-at": "\(nextToSend)"])
        }
        helloDue = nil
        awaitingWelcome = false
        retransmitDue = nil
    }

    private func handleAck(_ ack: WireFrame.Ack) {
        core.logger.trace("acknowledgement", metadata: ["peer": "\(id)", "processed-up-to": "\(ack.processedUpTo)", "received-up-to": "\(ack.receivedUpTo)"])
        let last = ack.processedRanges.last?.upperBound ?? ack.receivedUpTo
        guard max(ack.receivedUpTo, last) < log.nextSequenceNumber else {
            core.refused(from: id, reason: "acknowledgement of numbers never sent", label: "impossible_ack")
            return
        }
        received(upTo: ack.receivedUpTo, now: .now, sampling: true)
        advanceProcessed(to: ack.processedUpTo, ranges: ack.processedRanges)
    }

    /// The receiver holds every number up to `mark` (an ACK, or a late WELCOME): the
    /// retransmission timer restarts when that is news, and nothing up to it goes again.
    /// `sampling`: the round trip to `mark` may be sampled (an ACK; Karn's rule still
    /// samples only numbers sent once).
    private func received(upTo mark: UInt64, now: ContinuousClock.Instant, sampling: Bool) {
        if mark > receivedUpTo {
            if sampling, let sentAt = ledger.firstSentAt(mark) {
                rtt.sample(now - sentAt)
                metricsRoundTrip(now - sentAt)
            } else {
                rtt.progressed()
            }
            receivedUpTo = mark
            retransmitDue = highestSent > receivedUpTo ? now + rtt.jitteredTimeout(using: &random) : nil
        }
        nextToSend = max(nextToSend, receivedUpTo + 1)
    }

    private func handleOutcomes(_ outcomes: WireFrame.Outcomes) {
        for entry in outcomes.entries where entry.sequence > processedUpTo && entry.sequence < log.nextSequenceNumber {
            guard decided[entry.sequence] == nil else { continue }
            let outcome: Outcome
            let reason: DeadLetterReason
            switch entry.code {
            case .rejected: outcome = .rejected(reason: entry.reason); reason = .rejected(entry.reason)
            case .expired: outcome = .expired; reason = .expired
            }
            decide(entry.sequence, outcome, reason, record: nil)
        }
    }

    /// Moves the processed mark and publishes the outcomes it settles. Numbers decided
    /// earlier (rejected, expired, dead-lettered) were published and counted then.
    private func advanceProcessed(to mark: UInt64, ranges: [ClosedRange<UInt64>]) {
        var individually: [(UInt64, Outcome)] = []
        if mark > processedUpTo {
            // Numbers counted before (selectively acknowledged, decided) or never counted
            // (silent) are left out of this step's count; a number may be in several sets.
            var excluded = Set(processedAbove.filter { $0 <= mark })
            let decidedBelow = decided.keys.filter { $0 <= mark }
            excluded.formUnion(decidedBelow)
            excluded.formUnion(silent.filter { $0 <= mark })
            if !processedAbove.isEmpty { processedAbove = processedAbove.filter { $0 > mark } }
            for sequence in decidedBelow { decided[sequence] = nil }
            if !silent.isEmpty { silent = silent.filter { $0 > mark } }
            countProcessed(Int(mark - processedUpTo) - excluded.count)
            ledger.drop(through: mark)
            processedUpTo = mark
            nextToSend = max(nextToSend, mark + 1)
            receivedUpTo = max(receivedUpTo, mark)
        }
        for range in ranges {
            for sequence in range where sequence > processedUpTo && !processedAbove.contains(sequence) {
                processedAbove.insert(sequence)
                if decided[sequence] == nil && !silent.contains(sequence) {
                    individually.append((sequence, .processed))
                }
            }
        }
        countProcessed(individually.count)
        core.outcomes.settle(peer: id, processedUpTo: processedUpTo, individually: individually)
    }

    private func countProcessed(_ count: Int) {
        guard count > 0 else { return }
        statistics.processed += count
        metrics.processed.increment(by: count)
    }

    /// Gives a number up (or records the receiver's verdict): dead-letters its record and
    /// remembers the outcome until an acknowledgement finishes the number.
    func decide(_ sequence: UInt64, _ outcome: Outcome, _ reason: DeadLetterReason, record: SpoolRecord?) {
        guard decided[sequence] == nil else { return }
        decided[sequence] = outcome
        switch outcome {
        case .processed: break
        case .rejected: statistics.rejected += 1; metrics.rejected.increment()
        case .expired: statistics.expired += 1; metrics.expired.increment()
        case .deadLettered: statistics.deadLettered += 1; metrics.deadLettered.increment()
        }
        // The outcome is final now; the acknowledgement that follows only frees the number.
        publishCounters()
        core.outcomes.settle(peer: id, processedUpTo: processedUpTo, individually: [(sequence, outcome)])
        var stored = record
        if stored == nil, let read = try? log.readPending(from: sequence, limit: 1).first, read.sequenceNumber == sequence {
            stored = read
        }
        if let stored {
            do { _ = try log.deadLetters.add(stored, streamID: stream, reason: reason) } catch {
                core.logger.error("cannot store a dead letter", metadata: ["peer": "\(id)", "sequence": "\(sequence)", "error": "\(error)"])
            }
        }
        core.emit(.deadLettered(MessageID(peer: id, stream: stream, sequence: sequence), outcome))
    }
}
