import CoreMetrics
import CourierSpool
import Logging
import ZeroMQ

extension OutboundPeer {
    /// Sends HELLO when due, then as many durable records as the window allows, packed
    /// into DATA frames. Stops early when the socket's queue is full.
    func pump(now: ContinuousClock.Instant) {
        sendHelloIfDue(now)
        guard welcomed, !awaitingWelcome else { return }
        let window = UInt64(max(1, core.configuration.inFlightWindow))
        while nextToSend <= durableUpTo {
            let limit = min(durableUpTo, processedUpTo + window)
            guard nextToSend <= limit else { break }
            guard let (frame, batch, next) = buildFrame(upTo: limit) else { break }
            if batch.isEmpty {
                guard next > nextToSend else { break }  // held back by the byte limit
                nextToSend = next
                continue
            }
            let sent: Bool
            do { sent = try dealer.trySend([frame]) } catch {
                core.logger.warning("sending to peer failed", metadata: ["peer": "\(id)", "error": "\(error)"])
                sent = false
            }
            guard sent else { break }
            var again = 0
            for (sequence, attempt, bytes) in batch {
                ledger.sent(sequence, attempt: attempt, bytes: bytes, at: now)
                if attempt > 1 { again += 1 }
            }
            statistics.retransmitted += again
            metricsSent(first: batch.count - again, again: again)
            fresh.drop(through: next - 1)
            highestSent = max(highestSent, next - 1)
            nextToSend = next
            if retransmitDue == nil { retransmitDue = now + rtt.jitteredTimeout(using: &random) }
        }
    }

    /// Encodes the next DATA frame from `nextToSend` up to `limit`: records read from the
    /// spool, tombstones for numbers given up or missing. Returns the frame, the numbers it
    /// carries with their attempts and payload bytes, and the number after the last one
    /// handled; nil when the spool could not be read. New numbers stop at the in-flight byte
    /// limit (one always goes when nothing is in flight).
    private func buildFrame(upTo limit: UInt64) -> ([UInt8], [(UInt64, UInt32, Int)], UInt64)? {
        let wanted = Int(min(limit - nextToSend + 1, UInt64(Wire.maxRecordsPerFrame / 2)))
        fresh.drop(through: nextToSend - 1)  // passed over (acknowledged meanwhile)
        let records: ArraySlice<SpoolRecord>
        do {
            if let held = fresh.records(from: nextToSend, limit: wanted, maxBytes: Wire.frameBudget) {
                records = held
            } else {
                // Not held (a retransmission, an earlier run's records): read the spool, up
                // to where the held run starts.
                let before = fresh.first.map { Int(clamping: $0 &- nextToSend) } ?? wanted
                records = try log.readPending(from: nextToSend, limit: max(1, min(wanted, before)), maxBytes: Wire.frameBudget)[...]
            }
        } catch {
            core.logger.error("cannot read the spool", metadata: ["peer": "\(id)", "error": "\(error)"])
            return nil
        }
        var encoder = WireEncoder.data(stream: stream, capacity: 1024 + records.reduce(0) { $0 + $1.payload.count + 25 })
        var batch: [(UInt64, UInt32, Int)] = []
        var bytesAllowed = core.configuration.inFlightBytes - ledger.bytesInFlight
        var expected = nextToSend
        let wallNow = WallClock.nanoseconds
        let full = Wire.maxRecordsPerFrame - 1

        func tombstone(_ sequence: UInt64) {
            let attempt = ledger.attempts(of: sequence) + 1
            encoder.appendRecord(sequence: sequence, attempt: attempt, isTombstone: true, expiry: 0, payload: EmptyCollection())
            batch.append((sequence, attempt, 0))
        }
        /// Numbers the spool no longer has (quarantined, or reserved and never used).
        func skipMissing(before end: UInt64) {
            while expected < end, encoder.recordCount < full {
                if !processedAbove.contains(expected) {
                    silent.insert(expected)
                    tombstone(expected)
                }
                expected += 1
            }
        }

        if records.isEmpty {
            let acknowledged = log.acknowledgedUpTo
            if nextToSend <= acknowledged { return ([], [], acknowledged + 1) }
            skipMissing(before: limit + 1)
        }
        for record in records {
            let sequence = record.sequenceNumber
            guard sequence <= limit, encoder.recordCount < full else { break }
            skipMissing(before: sequence)
            guard expected == sequence else { break }
            let attempt = ledger.attempts(of: sequence) + 1
            if attempt == 1, processedAbove.isEmpty || !processedAbove.contains(sequence) {
                // A new number: within the byte limit, or alone on the wire.
                guard record.payload.count <= bytesAllowed || (ledger.bytesInFlight == 0 && batch.isEmpty) else { break }
                bytesAllowed -= record.payload.count
            }
            expected = sequence + 1
            if !processedAbove.isEmpty, processedAbove.contains(sequence) { continue }
            if !decided.isEmpty, decided[sequence] != nil {
                tombstone(sequence)
            } else if let expiry = record.expiresAt, expiry <= wallNow {
                decide(sequence, .expired, .expired, record: record)
                tombstone(sequence)
            } else if let maximum = core.configuration.maxAttempts, attempt > maximum {
                let reason = "no acknowledgement after \(maximum) attempts"
                decide(sequence, .deadLettered(reason: reason), .deadLettered(reason), record: record)
                tombstone(sequence)
            } else {
                encoder.appendRecord(sequence: sequence, attempt: attempt, isTombstone: false,
                                     expiry: record.expiresAt ?? 0, payload: record.payload)
                batch.append((sequence, attempt, record.payload.count))
            }
        }
        if batch.isEmpty { return ([], [], expected) }
        return (encoder.finish(), batch, expected)
    }

    private func sendHelloIfDue(_ now: ContinuousClock.Instant) {
        guard let due = helloDue, now >= due else { return }
        let hello = WireFrame.hello(.init(stream: stream, firstUnacknowledged: processedUpTo + 1,
                                          nextSequence: max(log.nextSequenceNumber, processedUpTo + 1)))
        let sent = (try? dealer.trySend([WireEncoder.encode(hello)])) == true
        if sent { hellosUnanswered += 1 }
        // Until a connection's first WELCOME, HELLO repeats on its own timer; after that the
        // next retransmission timeout asks again, once per timeout.
        helloDue = sent && welcomed ? nil : now + rtt.jitteredTimeout(using: &random)
    }

    /// Timers: retransmission, lazy spool acknowledgement, drained waiters, statistics.
    /// Returns when it next needs to run.
    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        if welcomed, let due = retransmitDue, now >= due {
            if highestSent > receivedUpTo {
                // Nothing said these numbers arrived. Ask before resending them, and send
                // nothing new meanwhile: after a stall the receiver usually has them all
                // (receivers acknowledge receipt within AckCoalescing.receiptDelay), and its
                // WELCOME says from where to resume (handleWelcome), so only what is really
                // missing goes again.
                rtt.timedOut()
                helloDue = now
                awaitingWelcome = true
                core.logger.debug("retransmission timeout", metadata: ["peer": "\(id)", "received-up-to": "\(receivedUpTo)", "rto": "\(rtt.timeout)"])
                retransmitDue = now + rtt.jitteredTimeout(using: &random)
            } else {
                retransmitDue = nil
            }
        }
        let generation = core.outcomes.generation(of: id)
        let everythingDone = processedUpTo + 1 >= log.nextSequenceNumber
        if processedUpTo > spoolAcknowledgedUpTo, everythingDone || now - spoolAcknowledgedAt >= .milliseconds(100) {
            do {
                _ = try log.acknowledge(upTo: processedUpTo)
                spoolAcknowledgedUpTo = processedUpTo
                spoolAcknowledgedAt = now
            } catch {
                core.logger.error("cannot record the acknowledged mark", metadata: ["peer": "\(id)", "error": "\(error)"])
            }
        }
        if everythingDone && spoolAcknowledgedUpTo >= processedUpTo, drainedGeneration != generation {
            // Figures are current when waiters for the drain wake.
            publishStatistics()
            drainedGeneration = generation
            core.outcomes.drained(peer: id, generation: generation)
        }
        return [retransmitDue, welcomed && !awaitingWelcome ? nil : helloDue].compactMap { $0 }.min()
    }

    /// Publishes changed counters (cheap; every turn of the loop).
    func publishCounters() {
        guard statistics != publishedStatistics else { return }
        core.outcomes.publish(statistics)
        publishedStatistics = statistics
    }

    /// Refreshes every published figure, spool status included.
    func publishStatistics() {
        let status = log.status
        statistics.connected = welcomed
        statistics.since = connectedSince
        statistics.pending = status.pendingCount
        statistics.pendingBytes = status.pendingBytes
        statistics.inFlight = Int(min(highestSent, durableUpTo) &- min(processedUpTo, highestSent))
        statistics.roundTripTime = rtt.smoothed
        metricsGauges(status)
        core.outcomes.publish(statistics)
        publishedStatistics = statistics
    }
}
