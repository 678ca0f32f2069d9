import Courier
import CourierExampleSupport

/// One run of the producer: sends the messages (generated or read), then either leaves
/// them to the spool or waits for their outcomes.
struct ProducerSession {
    let node: Node
    let options: Producer
    /// The headers every message carries (`--header`).
    let headers: MessageHeaders
    private let program = "courier-producer"

    init(node: Node, options: Producer, headers: MessageHeaders) {
        self.node = node
        self.options = options
        self.headers = headers
    }

    /// Runs to the end and returns the exit code.
    func run() async -> Int32 {
        let peer = options.target.id
        let progress = Progress(
            enabled: OutputStream.standardError.isTerminal && (options.wait || options.count != nil),
            total: options.count, node: node, peer: peer)
        let publisher = node.publisher(to: peer, timeToLive: options.ttl.flatMap(duration(seconds:)),
                                       maxUnstoredMessages: options.batch)
        let reporter = SpooledReporter(printing: options.printSpooled, progress: progress)
        do {
            if let count = options.count {
                try await sendGenerated(count, through: publisher, reporter: reporter)
            } else {
                try await sendStandardInput(through: publisher, reporter: reporter)
            }
            try await publisher.flush()
            if let failure = await reporter.finish() { throw failure }
        } catch {
            _ = await reporter.finish()
            await progress.stop()
            complain(program, "\(error)")
            await node.shutdown(timeout: .zero)
            return ExitStatus.failure
        }
        guard options.wait else {
            await progress.stop()
            // Everything is spooled; delivery continues the next time a node runs here.
            await node.shutdown(timeout: .zero)
            return ExitStatus.success
        }
        progress.waiting()
        do {
            try await node.waitUntilDelivered(to: peer)
        } catch {
            await progress.stop()
            complain(program, "\(error)")
            await node.shutdown(timeout: .zero)
            return ExitStatus.failure
        }
        await progress.stop()
        let status = await summarize(peer: peer)
        await node.shutdown()
        return status
    }

    // MARK: Sending

    private func sendGenerated(_ count: Int, through publisher: Publisher, reporter: SpooledReporter) async throws {
        let prefix = Array("\(options.id)-".utf8)
        let size = options.size ?? 0
        var pacer = Pacer(rate: options.rate)
        var next = 1
        while next <= count {
            let take = await pacer.admit(min(options.batch, count - next + 1))
            var payloads: [[UInt8]] = []
            payloads.reserveCapacity(take)
            for n in next..<(next + take) {
                var payload = prefix + Array(String(n).utf8)
                if payload.count < size {
                    payload += repeatElement(UInt8(ascii: "."), count: size - payload.count)
                }
                payloads.append(payload)
            }
            try await send(payloads, through: publisher, reporter: reporter)
            pacer.record(take)
            next += take
        }
    }

    private func sendStandardInput(through publisher: Publisher, reporter: SpooledReporter) async throws {
        let reader = LineReader(limit: max(options.batch * 4, 1024))
        var pacer = Pacer(rate: options.rate)
        while true {
            let allowed = await pacer.admit(options.batch)
            guard let lines = await reader.next(maximum: allowed) else { return }
            try await send(lines, through: publisher, reporter: reporter)
            pacer.record(lines.count)
        }
    }

    /// Hands `payloads` to the publisher, which writes them while the producer reads or
    /// makes the next ones; the reporter prints (--print-spooled) and counts them once they
    /// are stored.
    private func send(_ payloads: [[UInt8]], through publisher: Publisher, reporter: SpooledReporter) async throws {
        if let failure = reporter.failure { throw failure }
        var receipts: [PendingReceipt] = []
        receipts.reserveCapacity(payloads.count)
        do {
            for payload in payloads { receipts.append(try await publisher.send(payload, headers: headers)) }
        } catch {
            // Those accepted before the failure may have been stored: they are reported.
            reporter.add(Array(payloads.prefix(receipts.count)), receipts: receipts)
            throw error
        }
        reporter.add(payloads, receipts: receipts)
    }

    // MARK: Summary

    /// Prints the outcomes on standard error and returns the exit code: 0 only if every
    /// one was processed. The outcomes are those the node reports after its outcome cursor:
    /// every message of earlier runs not yet reported by a `--wait` run, and this run's.
    /// The cursor moves past them once the line is printed, so the next `--wait` run
    /// reports what comes after (a run killed before that reports them again).
    private func summarize(peer: String) async -> Int32 {
        var counts = (processed: 0, rejected: 0, expired: 0, deadLettered: 0)
        var last: MessageID?
        do {
            // Everything is delivered (waitUntilDelivered returned): no report waits.
            for try await report in node.outcomes(for: peer, extent: .sentSoFar) {
                switch report.outcome {
                case .processed: counts.processed += 1
                case .rejected: counts.rejected += 1
                case .expired: counts.expired += 1
                case .deadLettered: counts.deadLettered += 1
                }
                last = report.id
            }
        } catch {
            complain(program, "cannot read the outcomes: \(error)")
            return ExitStatus.failure
        }
        let pending = node.statistics(for: peer)?.pending ?? 0
        let failed = counts.rejected + counts.expired + counts.deadLettered
        var line = "delivered to \(peer): \(counts.processed) processed, \(counts.rejected) rejected, "
            + "\(counts.expired) expired, \(counts.deadLettered) dead-lettered; \(pending) pending"
        if failed > 0 {
            line += " (the failed ones are in the dead letters: courier-spool dead-letters \(options.dataDirectory) --peer \(peer))"
        }
        complain(program, line)
        if let last {
            do { try await node.acknowledgeOutcomes(through: last) } catch {
                complain(program, "cannot record that the outcomes up to \(last) were reported (the next --wait run reports them again): \(error)")
                return ExitStatus.failure
            }
        }
        return failed == 0 ? ExitStatus.success : ExitStatus.failure
    }
}

/// Standard output was closed (with --print-spooled); the messages are still spooled.
struct OutputClosed: Error, CustomStringConvertible {
    var description: String { "standard output is closed; the messages sent so far are spooled and will be delivered" }
}

/// Paces sending to `--rate` messages per second (no limit without it).
struct Pacer {
    let rate: Double?
    private var start: ContinuousClock.Instant?
    private var sent = 0

    init(rate: Double?) { self.rate = rate }

    /// Waits until at least one message may go, and returns how many may go now (at most `wanted`).
    mutating func admit(_ wanted: Int) async -> Int {
        guard let rate else { return wanted }
        let clock = ContinuousClock()
        let start = self.start ?? clock.now
        self.start = start
        while true {
            let elapsed = start.duration(to: clock.now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let allowed = Int(seconds * rate) + 1 - sent
            if allowed > 0 { return min(wanted, allowed) }
            let due = start + .milliseconds(Int64((Double(sent) / rate * 1000).rounded(.up)))
            try? await Task.sleep(until: due, clock: clock)
        }
    }

    /// Counts messages that went.
    mutating func record(_ count: Int) { sent += count }
}
