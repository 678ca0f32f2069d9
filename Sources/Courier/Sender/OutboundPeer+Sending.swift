import CoreMetrics
import CourierSpool
import Logging
import ZeroMQ

extension OutboundPeer {
    /// Sends HELLO when due, then as many durable records as the window allows, packed
    /// into DATA frames. Stops early when the socket's queue is full.
    func pump(now: ContinuousClock.Instant) {
        if machine.helloDue(now: now) {
            let hello = machine.helloFrame(nextSequence: log.nextSequenceNumber)
            machine.helloSent((try? dealer.trySend([hello])) == true, now: now)
        } else if machine.confirmationDue(now: now) {
            let hello = machine.helloFrame(nextSequence: log.nextSequenceNumber)
            machine.confirmationSent((try? dealer.trySend([hello])) == true, now: now)
        }
        var actions: [SenderStream.Action] = []
        defer { if !actions.isEmpty { perform(actions) } }
        while let window = machine.sendWindow() {
            guard let records = records(for: window) else { break }
            let frame = machine.frame(for: window, records: records, wall: WallClock.nanoseconds, into: &actions)
            if frame.batch.isEmpty {
                guard frame.next > window.from else { break }  // held back by the byte limit
                machine.skip(to: frame.next)
                continue
            }
            let sent: Bool
            do { sent = try dealer.trySend([frame.bytes]) } catch {
                logger.warning("sending to peer failed", metadata: ["peer": "\(id)", "error": "\(error)"])
                sent = false
            }
            guard sent else { break }
            let (first, again) = machine.sent(frame, now: now)
            metricsSent(first: first, again: again)
            fresh.drop(through: frame.next - 1)
        }
    }

    /// The records `window` may carry: those `send` handed over in this run when they start
    /// there, else read from the spool (a retransmission, an earlier run's records) up to
    /// where the held run starts. Nil when the spool cannot be read.
    private func records(for window: SenderStream.SendWindow) -> ArraySlice<SpoolRecord>? {
        fresh.drop(through: window.from - 1)  // passed over (acknowledged meanwhile)
        if let held = fresh.records(from: window.from, limit: window.count, maxBytes: Wire.frameBudget) { return held }
        let before = fresh.first.map { Int(clamping: $0 &- window.from) } ?? window.count
        do {
            return try log.readPending(from: window.from, limit: max(1, min(window.count, before)), maxBytes: Wire.frameBudget)[...]
        } catch {
            logger.error("cannot read the spool", metadata: ["peer": "\(id)", "error": "\(error)"])
            return nil
        }
    }

    /// Timers: retransmission, lazy spool acknowledgement, drained waiters, statistics.
    /// Returns when it next needs to run.
    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var actions: [SenderStream.Action] = []
        // The generation before the spool's next number: a send's completion advances the
        // number, then the generation. Read the other way round, a send completing between
        // the two reads was reported drained under its new generation, and its waiter woke
        // before the message was delivered.
        let generation = core.outcomes.generation(of: id)
        let nextSequence = log.nextSequenceNumber
        let deadline = machine.tick(now: now, nextSequence: nextSequence, into: &actions)
        if !actions.isEmpty { perform(actions) }
        // No I/O here: the spool's writer writes them (a pwrite, never synced).
        if let attempts = machine.attemptsToRecord(now: now) { log.recordAttempts(attempts) }
        if machine.isDrained(nextSequence: nextSequence), drainedGeneration != generation {
            // Figures are current when waiters for the drain wake.
            publishStatistics()
            drainedGeneration = generation
            core.outcomes.drained(peer: id, generation: generation)
        }
        return deadline
    }

    /// Publishes changed counters (cheap; every turn of the loop).
    func publishCounters() {
        copyCounts()
        guard statistics != publishedStatistics else { return }
        core.outcomes.publish(statistics)
        publishedStatistics = statistics
    }

    /// Refreshes every published figure, spool status included.
    func publishStatistics() {
        let status = log.status
        copyCounts()
        statistics.connected = machine.link.isWelcomed
        statistics.protocolVersion = machine.link.isWelcomed ? Int(machine.version) : nil
        statistics.since = machine.connectedSince
        statistics.pending = status.pendingCount
        statistics.pendingBytes = status.pendingBytes
        statistics.inFlight = machine.inFlight
        statistics.roundTripTime = machine.rtt.smoothed
        metricsGauges(status)
        core.outcomes.publish(statistics)
        publishedStatistics = statistics
    }

    private func copyCounts() {
        let counts = machine.counts
        statistics.processed = counts.processed
        statistics.rejected = counts.rejected
        statistics.expired = counts.expired
        statistics.deadLettered = counts.deadLettered
        statistics.retransmitted = counts.retransmitted
    }
}
