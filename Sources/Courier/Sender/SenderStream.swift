import CourierSpool

/// The sending side of one stream as a state machine: where the connection and the stream
/// stand, and what to do next. It holds values only (no socket, spool, logger, clock or
/// node): the caller — ``OutboundPeer`` on the I/O thread, or a test — feeds it events
/// (a frame arrived, the connection changed, records became durable, a timer fired, the
/// store finished) and carries out the ``Action``s it returns. docs/ARCHITECTURE.md shows
/// where it sits.
///
/// Invariants: only numbers at or below ``durableUpTo`` are ever sent; at most the in-flight
/// window is outstanding beyond ``processedUpTo``; a number's outcome is reported once; the
/// spool is acknowledged only up to numbers whose dead letters (if any) are stored.
struct SenderStream {
    struct Settings: Sendable {
        var window: Int
        var inFlightBytes: Int
        var maxAttempts: Int?
        var retransmission: RetransmissionPolicy
        /// How long an acknowledged mark may wait before it is given to the spool (at once
        /// when everything is finished).
        var spoolAcknowledgementDelay: Duration = .milliseconds(100)
        /// How long a higher sent-up-to mark may wait before it is recorded for the next run
        /// (at once when a number went again: those counts are what a restart needs most).
        var attemptRecordDelay: Duration = .milliseconds(50)
        /// The newest protocol version to speak; each new connection starts with it and falls
        /// back to what the peer's VERSIONS answer offers.
        var protocolVersion: UInt8 = Wire.latestVersion
    }

    /// Where the connection stands.
    enum Link: Equatable, CustomStringConvertible {
        /// No WELCOME on this connection yet: HELLO repeats, next at `helloDue`.
        case connecting(helloDue: ContinuousClock.Instant)
        /// Welcomed: DATA flows.
        case open
        /// Welcomed, and a retransmission timeout asked where the receiver stands: no DATA
        /// goes until a WELCOME answers, so that the answer covers everything sent and only
        /// what it lacks goes again. `helloDue`: when the question goes (nil: it went).
        case asking(helloDue: ContinuousClock.Instant?)

        var isWelcomed: Bool {
            if case .connecting = self { return false }
            return true
        }

        var description: String {
            switch self {
            case .connecting: "connecting"
            case .open: "open"
            case .asking: "asking"
            }
        }
    }

    /// A change of the connection underneath (the socket monitor's events).
    enum ConnectionChange {
        case handshakeSucceeded
        case disconnected
    }

    /// What the caller must do.
    enum Action {
        /// Publish outcomes: every number up to `processedUpTo` not reported otherwise is
        /// processed, and each of `individually` has its outcome.
        case report(processedUpTo: UInt64, individually: [(UInt64, Outcome)])
        /// `count` more numbers were processed (for the counters).
        case countProcessed(Int)
        /// `sequence` is decided (rejected, expired, out of attempts): store its record as a
        /// dead letter (`record` nil: read it from the spool), then call
        /// ``SenderStream/deadLetterStored(_:)``.
        case deadLetter(sequence: UInt64, outcome: Outcome, reason: DeadLetterReason, record: SpoolRecord?)
        /// Give the spool the acknowledged mark, then call
        /// ``SenderStream/spoolAcknowledged(upTo:now:)``.
        case acknowledgeSpool(upTo: UInt64)
        /// A frame from the peer was refused (count and log it).
        case refused(reason: String, label: String)
        /// The peer speaks no version this node does; `firstReport`: log it.
        case unsupportedProtocol(peerVersions: [UInt8], firstReport: Bool)
        /// The peer does not speak the version tried: the stream speaks `version` now.
        case protocolVersion(UInt8, peerVersions: [UInt8])
        /// The receiver announced limits other than the last ones known (version 2 WELCOME).
        case peerLimits(window: Int, maxMessageSize: Int)
        case connected(resumeAt: UInt64)
        case disconnected
        case timedOut(receivedUpTo: UInt64, timeout: Duration)
        /// Everything sent was received long ago but not all of it is known processed: the
        /// stream asks where the receiver stands (an acknowledgement may have been dropped).
        case askedProcessed(processedUpTo: UInt64)
        case roundTrip(Duration)
    }

    /// Counts for ``PeerStatistics``.
    struct Counts: Equatable {
        var processed = 0
        var rejected = 0
        var expired = 0
        var deadLettered = 0
        var retransmitted = 0
    }

    let stream: UInt64
    let settings: Settings
    private(set) var link: Link
    /// HELLOs sent since the last WELCOME taken as an answer, and WELCOMEs still to come for
    /// HELLOs sent before that answer (late: they predate DATA sent since, so they only move
    /// marks forward). Each WELCOME taken as late also counts against the HELLOs sent since,
    /// so a lost answer makes the count too high for one question at most.
    private var hellosUnanswered = 0
    private var lateWelcomes = 0
    /// The protocol version this stream speaks on the current connection.
    private(set) var version: UInt8
    /// Version 2: the nonce of the last HELLO sent (each HELLO takes the next), the first
    /// nonce of the current question (a WELCOME echoing it or a later one answers it; no DATA
    /// goes while a question is open), and, after an unreadable frame, the first nonce whose
    /// answer restores trust in acknowledgements.
    private var nonce: UInt64
    private var questionNonce: UInt64
    private var trustNonce: UInt64 = 0
    /// Numbers above ``receivedUpTo`` the receiver said it holds in the answer taken last
    /// (version 2): a resend leaves them out. Ascending, disjoint.
    private(set) var receivedRanges: [ClosedRange<UInt64>] = []
    /// The limits the receiver announced in its last version-2 WELCOME (nil: none heard).
    private(set) var peerWindow: Int?
    private(set) var peerMaxMessageSize: Int?
    private(set) var connectedSince: ContinuousClock.Instant
    private var reportedVersions = false

    private(set) var durableUpTo: UInt64
    private(set) var processedUpTo: UInt64
    private(set) var processedAbove: Set<UInt64> = []
    private(set) var receivedUpTo: UInt64 = 0
    private(set) var nextToSend: UInt64
    private(set) var highestSent: UInt64 = 0
    /// Attempts, first-send times and bytes of the numbers in flight.
    private(set) var ledger: InFlightLedger
    /// Outcomes decided (and reported) before an acknowledgement finishes the number.
    private var decided: [UInt64: Outcome] = [:]
    /// Numbers never stored (sequence reservations after a crash): finished silently.
    private var silent: Set<UInt64> = []
    /// Decided numbers whose dead letters are being stored: the spool keeps them until then.
    private var deadLettersPending = PendingNumbers()
    private(set) var rtt: RoundTripEstimator
    private(set) var retransmitDue: ContinuousClock.Instant?
    /// While everything sent is received and some is not processed: when to ask where the
    /// receiver stands, in case the acknowledgement of the processed mark was dropped (a full
    /// queue). Backs off while nothing progresses; a slow consumer costs one HELLO now and then.
    private(set) var probeDue: ContinuousClock.Instant?
    private var probeBackoff = 0
    /// Numbers whose verdicts came in OUTCOMES frames and no HELLO has confirmed yet (with
    /// the lowest of them), and when a confirming HELLO last went.
    private var unconfirmedVerdicts = PendingNumbers()
    private var lowestUnconfirmedVerdict: UInt64?
    /// A frame from the peer could not be read (it may have carried verdicts): no
    /// acknowledgement counts until a WELCOME that followed a HELLO sent since, with no
    /// unreadable frame after that HELLO (the receiver repeats its verdicts before each
    /// WELCOME). `unreadableSinceHello`: one came after the last HELLO sent.
    private(set) var distrustsAcknowledgements = false
    private var unreadableSinceHello = false
    private var lastConfirmationAt: ContinuousClock.Instant
    private(set) var spoolAcknowledgedUpTo: UInt64
    private var spoolAcknowledgedAt: ContinuousClock.Instant
    private var random: SplitMix64
    private(set) var counts = Counts()
    /// Every number up to this one was sent at least once, by this run or an earlier one
    /// (the mark the next ``attemptsToRecord(now:)`` carries).
    private(set) var sentUpTo: UInt64 = 0
    /// When the attempt counts are next to be recorded (nil: nothing new since the last).
    private(set) var attemptsRecordDue: ContinuousClock.Instant?

    /// A stream whose spool holds numbers up to `durableUpTo`, all finished up to
    /// `processedUpTo`; `seed` makes the timeouts' jitter.
    init(stream: UInt64, settings: Settings, durableUpTo: UInt64, processedUpTo: UInt64,
         now: ContinuousClock.Instant, seed: UInt64) {
        self.stream = stream
        self.settings = settings
        self.link = .connecting(helloDue: now)
        self.connectedSince = now
        self.durableUpTo = max(durableUpTo, processedUpTo)
        self.processedUpTo = processedUpTo
        self.nextToSend = processedUpTo + 1
        self.ledger = InFlightLedger(after: processedUpTo)
        self.rtt = RoundTripEstimator(policy: settings.retransmission)
        self.spoolAcknowledgedUpTo = processedUpTo
        self.spoolAcknowledgedAt = now
        self.lastConfirmationAt = now
        self.random = SplitMix64(seed: seed)
        self.version = settings.protocolVersion
        // Nonces start at a random point so that no answer from an earlier run matches.
        self.nonce = random.next() >> 2
        self.questionNonce = nonce &+ 1
    }

    /// Numbers in flight: sent, and not known to be processed.
    var inFlight: Int { Int(min(highestSent, durableUpTo) &- min(processedUpTo, highestSent)) }

    /// Whether every number below `nextSequence` is finished and the spool knows it.
    func isDrained(nextSequence: UInt64) -> Bool {
        processedUpTo + 1 >= nextSequence && spoolAcknowledgedUpTo >= processedUpTo
    }

    // MARK: Events: the spool

    /// Numbers up to `mark` are durable: they may go on the wire.
    mutating func durable(upTo mark: UInt64) {
        durableUpTo = max(durableUpTo, mark)
    }

    /// The dead letter of `sequence` is stored (or could not be: it was logged).
    mutating func deadLetterStored(_ sequence: UInt64) {
        deadLettersPending.remove(sequence)
    }

    /// The spool took the acknowledged mark `mark` (asked by ``Action/acknowledgeSpool(upTo:)``).
    mutating func spoolAcknowledged(upTo mark: UInt64, now: ContinuousClock.Instant) {
        spoolAcknowledgedUpTo = max(spoolAcknowledgedUpTo, mark)
        spoolAcknowledgedAt = now
    }

    /// Outcomes decided by earlier runs (their dead letters are stored) for numbers the
    /// spool still holds: they are finished as decided, never reported again, and go on the
    /// wire only as tombstones.
    mutating func restore(decided earlier: [UInt64: Outcome]) {
        for (sequence, outcome) in earlier where sequence > processedUpTo && sequence <= durableUpTo {
            decided[sequence] = outcome
        }
    }

    /// How often an earlier run sent this stream's numbers (as it recorded them with
    /// ``attemptsToRecord(now:)``): the counts go on from there, so a number's next
    /// transmission carries the attempt after the last one recorded and ``Settings/maxAttempts``
    /// counts every run. Call before anything is sent; numbers at or below the processed
    /// mark, or never made durable, are left out.
    mutating func restore(attempts earlier: SentAttempts) {
        guard highestSent == 0, ledger.bytesInFlight == 0 else { return }
        ledger.restore(earlier, upTo: durableUpTo)
        sentUpTo = max(sentUpTo, min(earlier.sentUpTo, durableUpTo))
    }

    /// The attempt counts as they stand.
    var attempts: SentAttempts {
        SentAttempts(sentUpTo: max(sentUpTo, highestSent), repeated: ledger.repeated())
    }

    /// The attempt counts to record for the next run (``restore(attempts:)``), when they
    /// changed and are due (`now` nil: due whatever the time, as the stream stops); the caller
    /// hands them to the spool's writer, never writes them itself. A number sent again makes
    /// them due at once; a higher sent mark alone waits ``Settings/attemptRecordDelay``, so
    /// there is at most one per turn of the caller's loop, and usually far fewer.
    mutating func attemptsToRecord(now: ContinuousClock.Instant?) -> SentAttempts? {
        guard let due = attemptsRecordDue, now.map({ $0 >= due }) ?? true else { return nil }
        attemptsRecordDue = nil
        return attempts
    }

    /// A frame from the peer could not be read. It may have carried verdicts: the sender asks
    /// where the receiver stands, and takes no acknowledgement as processed until the answer
    /// (after which the receiver's retained verdicts come again). A peer that keeps sending
    /// unreadable frames is asked again at each timeout, with back-off; nothing it
    /// acknowledges meanwhile is reported processed.
    mutating func unreadableFrame(now: ContinuousClock.Instant) {
        unreadableSinceHello = true
        distrustsAcknowledgements = true
        trustNonce = nonce &+ 1
        if link == .open { ask(.asking(helloDue: now)) }
    }

    /// A new question: the link is `link` (connecting or asking), and only answers to HELLOs
    /// sent from now on answer it.
    private mutating func ask(_ link: Link) {
        self.link = link
        questionNonce = nonce &+ 1
    }

    // MARK: Events: the connection

    mutating func connectionChanged(_ change: ConnectionChange, now: ContinuousClock.Instant, into actions: inout [Action]) {
        let wasWelcomed = link.isWelcomed
        if wasWelcomed {
            connectedSince = now
            if change == .disconnected { actions.append(.disconnected) }
        }
        // Every new connection tries the newest version again: the peer may have been upgraded.
        if change == .handshakeSucceeded { version = settings.protocolVersion }
        receivedRanges = []
        ask(.connecting(helloDue: now))
        (hellosUnanswered, lateWelcomes) = (0, 0)
    }

    /// A frame from the peer (decoded; frames that do not decode never get here).
    mutating func received(_ frame: WireFrame, now: ContinuousClock.Instant, into actions: inout [Action]) {
        switch frame {
        case .welcome(let welcome) where welcome.stream == stream: welcomed(welcome, now: now, into: &actions)
        case .ack(let ack) where ack.stream == stream: acknowledged(ack, now: now, into: &actions)
        case .outcomes(let outcomes) where outcomes.stream == stream: verdicts(outcomes, into: &actions)
        case .versions(let versions):
            versionsHeard(versions.supported, now: now, into: &actions)
        case .welcome, .ack, .outcomes:
            actions.append(.refused(reason: "answer for another stream", label: "wrong_stream"))
        case .hello, .data:
            actions.append(.refused(reason: "a sender's frame sent to a sender", label: "wrong_direction"))
        }
    }

    /// A VERSIONS answer: the peer did not speak the version of a frame sent to it. The stream
    /// goes on in the newest version both speak, asking afresh; with none, the peer is reported.
    private mutating func versionsHeard(_ peerVersions: [UInt8], now: ContinuousClock.Instant, into actions: inout [Action]) {
        // About a frame of this version (a damaged version byte), or of an earlier connection.
        guard !peerVersions.contains(version), !link.isWelcomed else { return }
        guard let common = peerVersions.filter({ $0 <= settings.protocolVersion }).max() else {
            actions.append(.unsupportedProtocol(peerVersions: peerVersions, firstReport: !reportedVersions))
            reportedVersions = true
            return
        }
        version = common
        ask(.connecting(helloDue: now))
        (hellosUnanswered, lateWelcomes) = (0, 0)
        actions.append(.protocolVersion(common, peerVersions: peerVersions))
    }

    private mutating func welcomed(_ welcome: WireFrame.Welcome, now: ContinuousClock.Instant, into actions: inout [Action]) {
        guard welcome.receivedUpTo <= durableUpTo, welcome.processedUpTo <= durableUpTo else {
            actions.append(.refused(reason: "welcome claims numbers never sent", label: "impossible_ack"))
            return
        }
        let holds = max(welcome.receivedUpTo, welcome.processedUpTo)
        let late: Bool
        if let answer = welcome.answer {
            late = !answerTaken(answer, now: now, into: &actions)
            guard !late || (link.isWelcomed && !distrustsAcknowledgements) else { return }
        } else {
            // Version 1: WELCOME names no HELLO; the sender counts them.
            if distrustsAcknowledgements {
                guard !unreadableSinceHello else {
                    askAgain(now: now)
                    return
                }
                distrustsAcknowledgements = false
                lateWelcomes = 0
            }
            late = lateWelcomes > 0 || link == .open
            if late {
                lateWelcomes = max(0, lateWelcomes - 1)
                hellosUnanswered = max(0, hellosUnanswered - 1)
            } else {
                lateWelcomes = max(0, hellosUnanswered - 1)
                hellosUnanswered = 0
            }
        }
        if late {
            // A late answer to a HELLO sent before the answer taken: it may predate DATA
            // sent since, so it only moves marks forward.
            received(upTo: holds, now: now, sampling: false, into: &actions)
            advanceProcessed(to: welcome.processedUpTo, ranges: [], into: &actions)
            if case .asking = link, receivedUpTo >= highestSent {
                // Whichever HELLO this answers, the receiver holds everything sent: the
                // question is settled, with nothing to resend.
                link = .open
            }
            return
        }
        // A new connection (the receiver may have restarted: what it holds is exactly what
        // it says now) or the answer to a timeout's HELLO (on one connection what a receiver
        // holds only grows, so an answer taken for the wrong HELLO cannot move it back).
        let wasWelcomed = link.isWelcomed
        if wasWelcomed { rtt.progressed() }  // the peer answers: end the timeouts' back-off
        // Taken as it is, even below what an earlier frame said: only a receiver that lost
        // state (it restarted; or that frame was stale, from a connection since replaced)
        // holds less, and then what it lacks must go again. An answer taken for the wrong
        // question at worst makes numbers go twice (the receiver drops the copies).
        receivedUpTo = holds
        receivedRanges = (welcome.answer?.receivedRanges ?? []).filter { $0.upperBound <= durableUpTo }
        ledger.forgetSendTimes()
        advanceProcessed(to: welcome.processedUpTo, ranges: [], into: &actions)
        nextToSend = max(receivedUpTo, processedUpTo) + 1
        highestSent = max(highestSent, receivedUpTo)
        link = .open
        retransmitDue = nil
        if !wasWelcomed {
            connectedSince = now
            actions.append(.connected(resumeAt: nextToSend))
        }
    }

    /// Version 2: whether `answer` answers the open question (it echoes the nonce of a HELLO
    /// sent since the question began: no DATA went since, so it covers everything sent). Takes
    /// the receiver's limits from it, and, after an unreadable frame, trusts acknowledgements
    /// again only once an answer to a HELLO sent after that frame comes.
    private mutating func answerTaken(_ answer: WireFrame.Answer, now: ContinuousClock.Instant, into actions: inout [Action]) -> Bool {
        let window = Int(answer.window), maxMessageSize = Int(answer.maxMessageSize)
        if window != peerWindow || maxMessageSize != peerMaxMessageSize {
            (peerWindow, peerMaxMessageSize) = (window, maxMessageSize)
            actions.append(.peerLimits(window: window, maxMessageSize: maxMessageSize))
        }
        let answers = link != .open && answer.nonce >= questionNonce && answer.nonce <= nonce
        if distrustsAcknowledgements {
            guard answer.nonce >= trustNonce, answer.nonce <= nonce else {
                if answers { askAgain(now: now) }  // asked before the unreadable frame: again
                return false
            }
            distrustsAcknowledgements = false
        }
        return answers
    }

    /// The answer came from before a frame that could not be read: ask again, backing off.
    private mutating func askAgain(now: ContinuousClock.Instant) {
        rtt.timedOut()
        let due = now + rtt.jitteredTimeout(using: &random)
        ask(link.isWelcomed ? .asking(helloDue: due) : .connecting(helloDue: due))
    }

    private mutating func acknowledged(_ ack: WireFrame.Ack, now: ContinuousClock.Instant, into actions: inout [Action]) {
        // On a new connection nothing counts before the WELCOME: an ACK the receiver sent
        // before it heard this connection's HELLO may cover a rejection whose OUTCOMES frame
        // was lost with the old connection. The WELCOME comes after those verdicts again.
        guard link.isWelcomed, !distrustsAcknowledgements else { return }
        let last = ack.processedRanges.last?.upperBound ?? ack.receivedUpTo
        guard max(ack.receivedUpTo, last, ack.processedUpTo) <= durableUpTo else {
            actions.append(.refused(reason: "acknowledgement of numbers never sent", label: "impossible_ack"))
            return
        }
        received(upTo: ack.receivedUpTo, now: now, sampling: true, into: &actions)
        advanceProcessed(to: ack.processedUpTo, ranges: ack.processedRanges, into: &actions)
        if case .asking = link, receivedUpTo >= highestSent {
            // The receiver holds everything sent: the question is settled, whether or not its
            // HELLO or answer got through (a later answer counts as late).
            link = .open
        }
    }

    /// The receiver holds every number up to `mark` (an ACK, or a late WELCOME): the
    /// retransmission timer restarts when that is news, and nothing up to it goes again.
    /// `sampling`: the round trip to `mark` may be sampled (an ACK; Karn's rule still
    /// samples only numbers sent once).
    private mutating func received(upTo mark: UInt64, now: ContinuousClock.Instant, sampling: Bool, into actions: inout [Action]) {
        if mark > receivedUpTo {
            if sampling, let sentAt = ledger.firstSentAt(mark) {
                rtt.sample(now - sentAt)
                actions.append(.roundTrip(now - sentAt))
            } else {
                rtt.progressed()
            }
            receivedUpTo = mark
            retransmitDue = highestSent > receivedUpTo ? now + rtt.jitteredTimeout(using: &random) : nil
        }
        nextToSend = max(nextToSend, receivedUpTo + 1)
    }

    private mutating func verdicts(_ outcomes: WireFrame.Outcomes, into actions: inout [Action]) {
        for entry in outcomes.entries where entry.sequence > processedUpTo && entry.sequence <= durableUpTo {
            if unconfirmedVerdicts.insert(entry.sequence) {
                lowestUnconfirmedVerdict = min(lowestUnconfirmedVerdict ?? entry.sequence, entry.sequence)
            }
            switch entry.code {
            case .rejected: decide(entry.sequence, .rejected(reason: entry.reason), .rejected(entry.reason), record: nil, into: &actions)
            case .expired: decide(entry.sequence, .expired, .expired, record: nil, into: &actions)
            }
        }
    }

    /// Moves the processed mark and reports the outcomes it settles. Numbers decided
    /// earlier (rejected, expired, dead-lettered) were reported and counted then.
    private mutating func advanceProcessed(to mark: UInt64, ranges: [ClosedRange<UInt64>], into actions: inout [Action]) {
        var individually: [(UInt64, Outcome)] = []
        var count = 0
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
            count = Int(mark - processedUpTo) - excluded.count
            (probeDue, probeBackoff) = (nil, 0)
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
        count += individually.count
        if count > 0 {
            counts.processed += count
            actions.append(.countProcessed(count))
        }
        actions.append(.report(processedUpTo: processedUpTo, individually: individually))
    }

    /// Gives a number up (or records the receiver's verdict): reports the outcome, has its
    /// record dead-lettered, and remembers the outcome until an acknowledgement finishes the
    /// number. A number is decided once.
    mutating func decide(_ sequence: UInt64, _ outcome: Outcome, _ reason: DeadLetterReason, record: SpoolRecord?,
                         into actions: inout [Action]) {
        guard decided[sequence] == nil, sequence > processedUpTo, !processedAbove.contains(sequence) else { return }
        decided[sequence] = outcome
        switch outcome {
        case .processed: break
        case .rejected: counts.rejected += 1
        case .expired: counts.expired += 1
        case .deadLettered: counts.deadLettered += 1
        }
        deadLettersPending.insert(sequence)
        actions.append(.report(processedUpTo: processedUpTo, individually: [(sequence, outcome)]))
        actions.append(.deadLetter(sequence: sequence, outcome: outcome, reason: reason, record: record))
    }

    // MARK: Sending

    /// Whether a HELLO is due now.
    func helloDue(now: ContinuousClock.Instant) -> Bool {
        switch link {
        case .connecting(let due): now >= due
        case .asking(let due?): now >= due
        case .asking(nil), .open: false
        }
    }

    /// The HELLO to send; `nextSequence` is the next number the spool will assign. Its first
    /// unacknowledged number stays at the first one whose outcome is not durable here (a
    /// dead letter being stored): the receiver forgets verdicts below it, and after a crash
    /// this sender could learn that number's outcome from no one else.
    func hello(nextSequence: UInt64) -> WireFrame.Hello {
        WireFrame.Hello(stream: stream, firstUnacknowledged: acknowledgeableUpTo + 1, nextSequence: max(nextSequence, processedUpTo + 1),
                        nonce: version >= 2 ? nonce &+ 1 : nil)
    }

    /// The HELLO of ``hello(nextSequence:)`` in this stream's version.
    func helloFrame(nextSequence: UInt64) -> [UInt8] {
        WireEncoder.encode(.hello(hello(nextSequence: nextSequence)), version: version)
    }

    /// The HELLO that was due went on the wire (`sent`), or the socket's queue was full.
    mutating func helloSent(_ sent: Bool, now: ContinuousClock.Instant) {
        if sent {
            hellosUnanswered += 1
            nonce &+= 1
            unreadableSinceHello = false
            if lowestUnconfirmedVerdict != nil { forgetConfirmedVerdicts() }
        }
        // Until a connection's first WELCOME, HELLO repeats on its own timer; after that the
        // next retransmission timeout asks again, once per timeout.
        switch link {
        case .connecting: link = .connecting(helloDue: now + rtt.jitteredTimeout(using: &random))
        case .asking:
            // Asked by a retransmission timeout, the next timeout asks again; asked by a
            // probe (nothing outstanding, so no timer runs), the question repeats on its own.
            let again = retransmitDue == nil ? now + probeInterval : nil
            link = .asking(helloDue: sent ? again : now + rtt.jitteredTimeout(using: &random))
        case .open: preconditionFailure("SenderStream: a HELLO was sent while the link is open (none is due then)")
        }
    }

    /// The numbers the next DATA frame may carry: from `from` up to `limit`, at most `count`.
    struct SendWindow: Equatable {
        var from: UInt64
        var limit: UInt64
        var count: Int
    }

    /// Where the next DATA frame may start and end, when one may go now.
    func sendWindow() -> SendWindow? {
        guard link == .open, nextToSend <= durableUpTo else { return nil }
        // The receiver drops numbers beyond its own window: keep to the smaller.
        let window = min(settings.window, peerWindow ?? settings.window)
        let limit = min(durableUpTo, processedUpTo + UInt64(max(1, window)))
        guard nextToSend <= limit else { return nil }
        return SendWindow(from: nextToSend, limit: limit, count: Int(min(limit - nextToSend + 1, UInt64(Wire.maxRecordsPerFrame / 2))))
    }

    /// A DATA frame to send: its bytes, the numbers it carries with their attempts and
    /// payload bytes, and the number after the last one it handled. No numbers: nothing to
    /// send below `next` (``skip(to:)`` past it when it is beyond the window's start).
    struct Frame {
        var bytes: [UInt8]
        var batch: [(sequence: UInt64, attempt: UInt32, bytes: Int)]
        var next: UInt64
    }

    /// Builds the DATA frame for `window` from `records`: the spool's records from
    /// `window.from` on, in order (numbers it lacks were never stored or are quarantined:
    /// they go as tombstones and finish silently). Numbers decided earlier go as tombstones;
    /// numbers that expired or ran out of attempts are decided here. New numbers stop at the
    /// in-flight byte limit (one always goes when nothing is in flight).
    mutating func frame(for window: SendWindow, records: some Collection<SpoolRecord>, wall: Int64,
                        into actions: inout [Action]) -> Frame {
        precondition(window.from == nextToSend, "SenderStream: a frame was built for \(window.from) while the next number to send is \(nextToSend)")
        let recordHeaderSize = Wire.recordHeaderSize(version: version)
        var encoder = WireEncoder.data(stream: stream, version: version,
                                       capacity: 1024 + records.reduce(0) { $0 + $1.headers.count + $1.payload.count + recordHeaderSize })
        var batch: [(sequence: UInt64, attempt: UInt32, bytes: Int)] = []
        var bytesAllowed = settings.inFlightBytes - ledger.bytesInFlight
        var expected = window.from
        let limit = window.limit
        let full = Wire.maxRecordsPerFrame - 1

        func tombstone(_ sequence: UInt64) {
            let attempt = ledger.attempts(of: sequence) + 1
            encoder.appendRecord(sequence: sequence, attempt: attempt, isTombstone: true, expiry: 0,
                                 headers: EmptyCollection(), payload: EmptyCollection())
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
            if window.from <= spoolAcknowledgedUpTo { return Frame(bytes: [], batch: [], next: spoolAcknowledgedUpTo + 1) }
            skipMissing(before: limit + 1)
        }
        for record in records {
            let sequence = record.sequenceNumber
            // A frame stops at the frame budget (headers count too); one record always goes.
            guard sequence <= limit, encoder.recordCount < full, batch.isEmpty || encoder.byteCount < Wire.frameBudget else { break }
            skipMissing(before: sequence)
            guard expected == sequence else { break }
            let attempt = ledger.attempts(of: sequence) + 1
            if attempt == 1, processedAbove.isEmpty || !processedAbove.contains(sequence) {
                // A new number: within the byte limit, or alone on the wire.
                guard record.payload.count <= bytesAllowed || (ledger.bytesInFlight == 0 && batch.isEmpty) else { break }
                bytesAllowed -= record.payload.count
            }
            if !processedAbove.isEmpty, processedAbove.contains(sequence) {
                expected = sequence + 1
                continue
            }
            if !receivedRanges.isEmpty, receivedHolds(sequence) {
                expected = sequence + 1  // the receiver holds it: only what it lacks goes again
                continue
            }
            // A decided number goes as a tombstone, and only once its dead letter is stored:
            // the receiver takes a tombstone as finished, and after a crash only the dead
            // letter tells this sender the number's outcome.
            if !decided.isEmpty, decided[sequence] != nil {
                guard deadLettersPending.isEmpty || !deadLettersPending.contains(sequence) else { break }
                tombstone(sequence)
            } else if let expiry = record.expiresAt, expiry <= wall {
                decide(sequence, .expired, .expired, record: record, into: &actions)
                break
            } else if let maximum = settings.maxAttempts, attempt > maximum {
                let reason = "no acknowledgement after \(maximum) attempts"
                decide(sequence, .deadLettered(reason: reason), .deadLettered(reason), record: record, into: &actions)
                break
            } else if let reason = undeliverable(record) {
                decide(sequence, .deadLettered(reason: reason), .deadLettered(reason), record: record, into: &actions)
                break
            } else {
                encoder.appendRecord(sequence: sequence, attempt: attempt, isTombstone: false,
                                     expiry: record.expiresAt ?? 0, headers: record.headers, payload: record.payload)
                batch.append((sequence, attempt, record.payload.count))
            }
            expected = sequence + 1
        }
        if batch.isEmpty { return Frame(bytes: [], batch: [], next: expected) }
        return Frame(bytes: encoder.finish(), batch: batch, next: expected)
    }

    /// Whether the last answer said the receiver holds `sequence` beyond its first gap. The
    /// ranges are passed in order, so those below `sequence` are let go of.
    private mutating func receivedHolds(_ sequence: UInt64) -> Bool {
        while let first = receivedRanges.first, first.upperBound < sequence { receivedRanges.removeFirst() }
        return receivedRanges.first?.contains(sequence) ?? false
    }

    /// Why the receiver, as it announced itself, cannot take `record` (nil: it can): a payload
    /// above its maximum message size, or headers in a stream spoken in version 1, which cannot
    /// carry them. Such a record is dead-lettered at once rather than sent until its attempts
    /// run out.
    private func undeliverable(_ record: SpoolRecord) -> String? {
        if let limit = peerMaxMessageSize, record.payload.count > limit {
            return "a payload of \(record.payload.count) bytes is above the receiver's maximum message size of \(limit) bytes"
        }
        if version < 2, !record.headers.isEmpty {
            return "the receiver speaks protocol version 1, which cannot carry headers; requeue this dead letter once it is upgraded"
        }
        return nil
    }

    /// Nothing is to be sent below `next` (held back, or finished meanwhile).
    mutating func skip(to next: UInt64) {
        nextToSend = max(nextToSend, next)
    }

    /// `frame` went on the wire. Returns how many of its numbers went for the first time and
    /// how many again.
    mutating func sent(_ frame: Frame, now: ContinuousClock.Instant) -> (first: Int, again: Int) {
        var again = 0
        for (sequence, attempt, bytes) in frame.batch {
            ledger.sent(sequence, attempt: attempt, bytes: bytes, at: now)
            if attempt > 1 { again += 1 }
        }
        counts.retransmitted += again
        highestSent = max(highestSent, frame.next - 1)
        if again > 0 {
            attemptsRecordDue = now
        } else if highestSent > sentUpTo, attemptsRecordDue == nil {
            attemptsRecordDue = now + settings.attemptRecordDelay
        }
        sentUpTo = max(sentUpTo, highestSent)
        nextToSend = frame.next
        if retransmitDue == nil { retransmitDue = now + rtt.jitteredTimeout(using: &random) }
        return (frame.batch.count - again, again)
    }

    // MARK: Timers

    /// Runs the timers: the retransmission timeout, the lazy acknowledgement of the spool.
    /// `nextSequence` is the next number the spool will assign. Returns when it next needs
    /// to run (including when ``attemptsToRecord(now:)`` is next due, unless it is due
    /// already: the caller takes that at once).
    mutating func tick(now: ContinuousClock.Instant, nextSequence: UInt64, into actions: inout [Action]) -> ContinuousClock.Instant? {
        if link.isWelcomed, let due = retransmitDue, now >= due {
            if highestSent > receivedUpTo {
                // Nothing said these numbers arrived. Ask before resending them, and send
                // nothing new meanwhile: after a stall the receiver usually has them all
                // (receivers acknowledge receipt within AckCoalescing.receiptDelay), and its
                // WELCOME says from where to resume, so only what is really missing goes again.
                rtt.timedOut()
                ask(.asking(helloDue: now))
                actions.append(.timedOut(receivedUpTo: receivedUpTo, timeout: rtt.timeout))
                retransmitDue = now + rtt.jitteredTimeout(using: &random)
            } else {
                retransmitDue = nil
            }
        }
        if case .asking(nil) = link, retransmitDue == nil {
            // A question that went with a retransmission timer running (a probe's, say) and
            // got no answer, with nothing outstanding now: no timer would ask again.
            link = .asking(helloDue: now + probeInterval)
        }
        if link == .open, receivedUpTo >= highestSent, highestSent > processedUpTo {
            if let due = probeDue {
                if now >= due {
                    ask(.asking(helloDue: now))
                    probeDue = nil
                    probeBackoff = min(probeBackoff + 1, 5)
                    actions.append(.askedProcessed(processedUpTo: processedUpTo))
                }
            } else {
                probeDue = now + probeInterval
            }
        } else if link == .open {
            probeDue = nil
        }
        let mark = acknowledgeableUpTo
        if mark > spoolAcknowledgedUpTo,
           processedUpTo + 1 >= nextSequence || now - spoolAcknowledgedAt >= settings.spoolAcknowledgementDelay {
            actions.append(.acknowledgeSpool(upTo: mark))
        }
        let helloDeadline: ContinuousClock.Instant? = switch link {
        case .connecting(let due): due
        case .asking(let due): due
        case .open where confirmable:
            probeDue.map { min($0, lastConfirmationAt + Self.confirmationInterval) } ?? lastConfirmationAt + Self.confirmationInterval
        case .open: probeDue
        }
        // Attempt counts already due are the caller's to take now (attemptsToRecord).
        let attemptsDue = attemptsRecordDue.flatMap { $0 > now ? $0 : nil }
        return Self.earliest(Self.earliest(helloDeadline, retransmitDue), attemptsDue)
    }

    private static func earliest(_ a: ContinuousClock.Instant?, _ b: ContinuousClock.Instant?) -> ContinuousClock.Instant? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    /// How long a probe waits: max(1 s, 4 × RTO), doubling while nothing progresses, at most 30 s.
    private var probeInterval: Duration {
        min(max(.seconds(1), rtt.timeout * 4) * (1 << probeBackoff), .seconds(30))
    }

    // MARK: Confirming verdicts

    /// Whether a HELLO should tell the receiver that verdicts it sent are heard and durable
    /// here (it keeps them until a HELLO's first unacknowledged number passes them). At most
    /// one every ``confirmationInterval`` while verdicts come in; the WELCOME that answers
    /// is taken as late (it only moves marks forward).
    func confirmationDue(now: ContinuousClock.Instant) -> Bool {
        confirmable && now - lastConfirmationAt >= Self.confirmationInterval
    }

    /// Whether a HELLO now would confirm a verdict: one heard is finished and durable here.
    private var confirmable: Bool {
        guard link == .open, let lowest = lowestUnconfirmedVerdict else { return false }
        return lowest <= acknowledgeableUpTo
    }

    /// The confirming HELLO went (`sent`) or the queue was full.
    mutating func confirmationSent(_ sent: Bool, now: ContinuousClock.Instant) {
        guard sent else { return }
        hellosUnanswered += 1
        nonce &+= 1
        forgetConfirmedVerdicts()
        lastConfirmationAt = now
    }

    /// A HELLO went: it confirmed every verdict up to its first unacknowledged number.
    private mutating func forgetConfirmedVerdicts() {
        let mark = acknowledgeableUpTo
        unconfirmedVerdicts.removeAll(through: mark)
        lowestUnconfirmedVerdict = unconfirmedVerdicts.min
    }

    static let confirmationInterval: Duration = .milliseconds(200)

    /// The highest number the spool may be told is finished: every number up to it is
    /// processed and has its dead letter (if any) stored.
    var acknowledgeableUpTo: UInt64 {
        guard let first = deadLettersPending.min, first <= processedUpTo else { return processedUpTo }
        return first - 1
    }
}
