import CourierSpool
import Foundation
import Testing
import TestSupport
@testable import Courier

/// A property test of the protocol without sockets: one ``SenderStream`` and one
/// ``ReceiverStream`` driven through random interleavings (seeded, so every run replays) of
/// appends, durability, a network that loses, duplicates and reorders frames in both
/// directions, connection drops, timers, a receiver store whose writes complete late,
/// restarts of either side, and an application that settles each message after a while as
/// processed or rejected. The guarantees are checked on every step; at the end the faults
/// stop and everything must finish (liveness).
///
/// The way back (receiver → sender) is one ZeroMQ connection: its frames arrive in order,
/// and are lost only with the connection, or refused by a full queue, which the receiver
/// sees. The `exact` configuration keeps to that (with the way out as bad as in `chaos`,
/// connection drops, full queues and sender restarts) and allows no wrong outcome at all.
///
/// The `chaos` configuration goes beyond what ZeroMQ does (frames of the way back lost one by
/// one, duplicated, reordered) and restarts receivers, whose verdicts live in memory only
/// (issue 21). A `processed` report for a rejected or expired number is then excused only if
/// such a cause is on record for that number (the counts are printed with
/// `STREAM_SIMULATION_VERBOSE=1`); otherwise the test fails.
///
/// Bugs this simulation found, all fixed, fail the test if they come back: a WELCOME that
/// overtook pending OUTCOMES; a sender stuck in `.asking` with no timer; a sender that never
/// resynchronised after the ACK of the processed mark was dropped; an ACK sent on a new
/// connection before its HELLO, covering a rejection lost with the old one; a HELLO that told
/// the receiver to forget a verdict whose dead letter was not stored yet; a tombstone sent
/// before the dead letter that alone records its number's outcome.
/// Environment: `STREAM_SIMULATION_VERBOSE=1` prints each seed's counts,
/// `STREAM_SIMULATION_TRACE=<seed>` traces one seed.
@Suite("Stream simulation")
struct StreamSimulationTests {
    static let steps = 3_000
    static let seeds: [UInt64] = Array(1...200)

    @Test("random interleavings keep order, no gap, no unflagged duplicate and right outcomes; everything finishes",
          arguments: seeds)
    func chaos(seed: UInt64) {
        var simulation = StreamSimulation(seed: seed, faults: .chaos, version: 2)
        simulation.run(steps: Self.steps)
        simulation.finish()
        if ProcessInfo.processInfo.environment["STREAM_SIMULATION_VERBOSE"] != nil {
            print("stream simulation seed \(seed): \(simulation.summary)")
        }
    }

    @Test("with the way back as ZeroMQ gives it (in order; lost only with the connection or to a full queue), every outcome is exact",
          arguments: Array(seeds.prefix(50)))
    func exact(seed: UInt64) {
        for version: UInt8 in [1, 2] {
            var simulation = StreamSimulation(seed: seed, faults: .exact, version: version)
            simulation.run(steps: Self.steps)
            simulation.finish()
            #expect(simulation.excused.total == 0, "seed \(seed), protocol version \(version): \(simulation.excused)")
        }
    }

    @Test("protocol version 1 (WELCOMEs counted, not named) under the same random interleavings",
          arguments: Array(seeds.prefix(50)))
    func chaosVersion1(seed: UInt64) {
        var simulation = StreamSimulation(seed: seed, faults: .chaos, version: 1)
        simulation.run(steps: Self.steps)
        simulation.finish()
    }
}

// MARK: - The simulation

struct StreamSimulation {
    struct Faults {
        /// Per frame, sender → receiver.
        var lossOut: Double
        var duplicateOut: Double
        var reorderOut: Double
        /// Per frame, receiver → sender.
        var lossBack: Double
        var duplicateBack: Double
        var reorderBack: Double
        /// A socket's queue is full: the frame does not go.
        var queueFull: Double
        /// Per step.
        var connectionDrop: Double
        var senderRestart: Double
        var receiverRestart: Double

        static let chaos = Faults(lossOut: 0.05, duplicateOut: 0.05, reorderOut: 0.1, lossBack: 0.03, duplicateBack: 0.05,
                                  reorderBack: 0.1, queueFull: 0.01, connectionDrop: 0.004, senderRestart: 0.002,
                                  receiverRestart: 0.002)
        /// What ZeroMQ gives: the way back is one connection's frames in order, lost only with
        /// the connection or refused by a full queue (which the receiver sees); the way out
        /// is as bad as in `chaos` (the receiver copes with anything there); both sides
        /// restart, losing what was not durable.
        static let exact = Faults(lossOut: 0.1, duplicateOut: 0.1, reorderOut: 0.2, lossBack: 0, duplicateBack: 0,
                                  reorderBack: 0, queueFull: 0.01, connectionDrop: 0.004, senderRestart: 0.002, receiverRestart: 0.002)
        static let none = Faults(lossOut: 0, duplicateOut: 0, reorderOut: 0, lossBack: 0, duplicateBack: 0, reorderBack: 0,
                                 queueFull: 0, connectionDrop: 0, senderRestart: 0, receiverRestart: 0)
    }

    /// Wrong outcomes explained by the documented limit (issue 21), by cause.
    struct Excused: CustomStringConvertible, Sendable {
        /// The OUTCOMES entry went out and was lost or overtaken on the way back.
        var verdictLostOnTheWay = 0
        /// The receiver restarted before it sent the entry.
        var verdictForgottenByReceiverRestart = 0
        /// A sender restarted after an earlier incarnation heard it.
        var verdictForgottenBySenderRestart = 0
        /// Not a documented limit but the bug described at ``StreamSimulationTests/welcomeOvertakesOutcomes()``:
        /// a WELCOME sent while the entry waited for the next flush.
        var welcomeOvertookOutcomes = 0
        /// The bug described at ``SenderStreamTests/askingStallsWhenAcknowledged()``.
        var askingStalls = 0
        /// The bug described at ``SenderStreamTests/processedMarkLostForever()``.
        var lostAckStalls = 0
        var total: Int { verdictLostOnTheWay + verdictForgottenByReceiverRestart + verdictForgottenBySenderRestart }
        var description: String {
            "lost on the way back: \(verdictLostOnTheWay), forgotten by a receiver restart: \(verdictForgottenByReceiverRestart), forgotten by a sender restart: \(verdictForgottenBySenderRestart); bugs: WELCOME overtook OUTCOMES \(welcomeOvertookOutcomes), stalled asking \(askingStalls), stalled after a lost ACK \(lostAckStalls)"
        }
        mutating func add(_ other: Excused) {
            verdictLostOnTheWay += other.verdictLostOnTheWay
            verdictForgottenByReceiverRestart += other.verdictForgottenByReceiverRestart
            verdictForgottenBySenderRestart += other.verdictForgottenBySenderRestart
        }
    }

    private struct InFlight {
        var bytes: [UInt8]
        /// The numbers of an OUTCOMES frame's entries.
        var entries: [UInt64] = []
    }

    private enum StoreWrite {
        case begin(UInt64)
        case reserve(UInt64)
        case mark([UInt64], verdicts: [UInt64: InboundVerdict])
    }

    private struct Pending<T> {
        var value: T
        var dueStep: Int
    }

    private struct Settlement {
        var sequence: UInt64
        var dueStep: Int
    }

    let seed: UInt64
    private var faults: Faults
    private var rng: SeededGenerator
    private(set) var step = 0
    private var now: ContinuousClock.Instant
    private let t0: ContinuousClock.Instant
    private var wall: Int64 = 1_000_000_000
    private let stream: UInt64 = 0xC0_FFEE
    private let settings: SenderStream.Settings
    private let receiverWindow: Int
    private let coalescing: AckCoalescing
    private let decoder = WireDecoder(maxPayloadSize: 1 << 16)
    private let target: UInt64
    private(set) var excused = Excused()

    // The sender's spool.
    private var appended: UInt64 = 0
    private var durableMark: UInt64 = 0
    private var durability: [Pending<UInt64>] = []
    private var spoolAcknowledged: UInt64 = 0
    private var payloads: [UInt64: [UInt8]] = [:]
    private var expiries: [UInt64: Int64] = [:]
    private var generation = 0

    // The sender.
    private var sender: SenderStream
    private var senderIncarnation = 0
    /// Dead letters being stored for the current incarnation.
    private var deadLettersPending: [Pending<UInt64>] = []
    private var deadLettersUnstored: Set<UInt64> = []
    private var deadLetterOutcomes: [UInt64: Outcome] = [:]
    /// Dead letters stored by any incarnation: a restarted sender is given them.
    private var storedDeadLetters: [UInt64: Outcome] = [:]
    /// What this incarnation reported: cumulative mark and individual outcomes.
    private var reportedUpTo: UInt64 = 0
    private var reported: [UInt64: Outcome] = [:]
    private var initialProcessed: UInt64 = 0
    /// Outcome entries this sender incarnation heard.
    private var heard: Set<UInt64> = []
    /// Numbers whose rejection any earlier sender incarnation reported.
    private var decidedEarlier: Set<UInt64> = []
    private var everReported: Set<UInt64> = []

    // The network.
    private var connected = true
    private var toReceiver: [InFlight] = []
    private var toSender: [InFlight] = []

    // The receiver and its store.
    private var receiver: ReceiverStream?
    private var receiverIncarnation = 0
    private var durableState: InboundStreamState?
    /// The verdicts the store keeps for the sender (written with their marks).
    private var durableVerdicts: [UInt64: InboundVerdict] = [:]
    private var storeWrites: [Pending<StoreWrite>] = []
    /// Numbers whose OUTCOMES entry a receiver sent.
    private var verdictsSent: Set<UInt64> = []
    /// Numbers whose OUTCOMES entry was lost on the way back or may have been overtaken there
    /// (a frame of the way back reordered in front of it, a drop, a full queue).
    private var verdictsLost: Set<UInt64> = []
    /// Numbers rejected by the application while a receiver incarnation that later restarted
    /// held them.
    private var rejectedBeforeReceiverRestart: Set<UInt64> = []
    private var rejectedThisIncarnation: Set<UInt64> = []

    // The application.
    private var verdict: [UInt64: String?] = [:]
    private var delivered: Set<UInt64> = []
    private var deliveredThisIncarnation: Set<UInt64> = []
    private var lastDeliveredThisIncarnation: UInt64 = 0
    private var holding: [Settlement] = []
    private var redeliveries = 0
    /// The sender is taking a WELCOME (its reports come from it).
    private var takingWelcome = false
    /// `STREAM_SIMULATION_TRACE=<seed>` prints that seed's frames and sends.
    private let tracing: Bool
    private var drops = 0

    init(seed: UInt64, faults: Faults, version: UInt8) {
        self.seed = seed
        self.faults = faults
        tracing = ProcessInfo.processInfo.environment["STREAM_SIMULATION_TRACE"] == "\(seed)"
        var rng = SeededGenerator(seed: seed)
        t0 = ContinuousClock.now
        now = t0
        var retransmission = RetransmissionPolicy()
        retransmission.initialTimeout = .milliseconds(60)
        retransmission.minimumTimeout = .milliseconds(20)
        retransmission.maximumTimeout = .milliseconds(400)
        let window = [4, 8, 16].randomElement(using: &rng)!
        settings = SenderStream.Settings(window: window, inFlightBytes: [200, 1_000, 1 << 20].randomElement(using: &rng)!,
                                         maxAttempts: nil, retransmission: retransmission,
                                         spoolAcknowledgementDelay: .milliseconds(Int.random(in: 0...50, using: &rng)),
                                         protocolVersion: version)
        receiverWindow = Bool.random(using: &rng) ? window : max(2, window / 2)
        var coalescing = AckCoalescing()
        coalescing.count = Int.random(in: 1...8, using: &rng)
        coalescing.delay = .milliseconds(Int.random(in: 0...20, using: &rng))
        coalescing.receiptDelay = .milliseconds(Int.random(in: 1...10, using: &rng))
        self.coalescing = coalescing
        target = UInt64.random(in: 200...400, using: &rng)
        sender = SenderStream(stream: stream, settings: settings, durableUpTo: 0, processedUpTo: 0, now: t0, seed: rng.next())
        self.rng = rng
        var actions: [SenderStream.Action] = []
        sender.connectionChanged(.handshakeSucceeded, now: now, into: &actions)
        perform(actions)
    }

    // MARK: Checks

    /// Records the first failure, with the seed and step that replay it, and stops the run.
    private mutating func fail(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard !failed else { return }
        failed = true
        Issue.record("seed \(seed), step \(step): \(message)", sourceLocation: sourceLocation)
    }

    /// A known machine bug (see the report in the test files): fails only with
    /// `STREAM_SIMULATION_STRICT` set, so that the seed and step replaying it are printed.
    /// One of the bugs this simulation found (all fixed): a failure again.
    private mutating func knownBug(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        fail("regression of a fixed bug: \(message)", sourceLocation: sourceLocation)
    }

    /// What the run did, for the verbose log.
    var summary: String {
        "\(appended) messages, \(delivered.count) delivered, \(redeliveries) redelivered, \(senderIncarnation) sender and \(receiverIncarnation) receiver restarts, \(drops) connection drops, \(step) steps; excused: \(excused)"
    }
    private mutating func roll(_ p: Double) -> Bool { p > 0 && Double.random(in: 0..<1, using: &rng) < p }

    // MARK: Running

    /// Runs `steps` random steps with faults.
    mutating func run(steps: Int) {
        for _ in 0..<steps {
            guard !failed else { return }
            randomStep(appending: true)
        }
    }

    private var failed = false

    /// Stops the faults, reconnects, and runs until everything is finished.
    mutating func finish() {
        guard !failed else { return }
        faults = .none
        if !connected { reconnect() }
        var lastProgress = (step, sender.processedUpTo)
        for _ in 0..<20_000 {
            if failed { return }
            if isFinished { return checkFinal() }
            randomStep(appending: false)
            if sender.processedUpTo != lastProgress.1 {
                lastProgress = (step, sender.processedUpTo)
            } else if step - lastProgress.0 > 1_000, let receiver, receiver.processedUpTo > sender.processedUpTo {
                // The bug described at SenderStreamTests.processedMarkLostForever: the ACK
                // with the last processed mark was lost, the window is full and every number
                // sent is received, so no timer runs and the receiver owes nothing: only a new
                // connection (its WELCOME) moves the sender on. Counted, then unstuck.
                knownBug("stalled: the sender waits for processed \(receiver.processedUpTo) (it knows \(sender.processedUpTo)), the ACK was lost and nothing will send it again")
                excused.lostAckStalls += 1
                kick()
                lastProgress = (step, sender.processedUpTo)
            }
        }
        fail("not finished within 20,000 quiet steps: appended \(appended), durable \(durableMark), sender processed \(sender.processedUpTo) (link \(sender.link), received \(sender.receivedUpTo), next \(sender.nextToSend), highest sent \(sender.highestSent), bytes in flight \(sender.ledger.bytesInFlight) of \(settings.inFlightBytes), retransmission due \(String(describing: sender.retransmitDue.map { $0 - now })), window \(String(describing: sender.sendWindow()))), receiver ready \(receiver?.ready ?? false) received \(receiver?.receivedUpTo ?? 0) deadline \(String(describing: receiver?.nextDeadline.map { $0 - now })) quiet \(receiver?.isQuiet ?? true), connected \(connected), frames on the way \(toReceiver.count)/\(toSender.count), spool acknowledged \(spoolAcknowledged), receiver processed \(receiver?.processedUpTo ?? 0), delivered \(delivered.count), holding \(holding.count)")
        failed = true
    }

    private var isFinished: Bool {
        durableMark == appended && sender.processedUpTo == appended && spoolAcknowledged == appended && holding.isEmpty
            && storeWrites.isEmpty && (1...max(appended, 1)).allSatisfy { everReported.contains($0) || appended == 0 }
    }

    private mutating func checkFinal() {
        for sequence in 1...max(appended, 1) where appended > 0 {
            if !delivered.contains(sequence), expiries[sequence] == nil {
                fail("\(sequence) was never delivered")
                failed = true
                return
            }
        }
    }

    private mutating func randomStep(appending: Bool) {
        step += 1
        if case .asking(nil) = sender.link, sender.retransmitDue == nil {
            // The bug described at SenderStreamTests.askingStallsWhenAcknowledged: nothing
            // will ever make this sender ask again or send. Counted, then unstuck by a new
            // connection so that the rest of the run is still checked.
            knownBug("the sender is stuck asking: its HELLO got no answer, and an ACK covered everything sent (no timer left)")
            excused.askingStalls += 1
            kick()
        }
        let advance = Int.random(in: 0...4, using: &rng)
        now += .milliseconds(advance)
        wall += Int64(advance) * 1_000_000
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<8: if appending { append() }
        case 8..<12: completeDurability()
        case 12..<24: pumpSender()
        case 24..<30: tickSender()
        case 30..<46: deliverToReceiver()
        case 46..<60: deliverToSender()
        case 60..<72: flushReceiver()
        case 72..<82: settleApplication()
        case 82..<92: completeStoreWrites()
        case 92..<96: completeDeadLetters()
        default:
            faultStep()
        }
        if !appending {
            // Keep everything moving: every part takes its turn at every step.
            completeDurability()
            pumpSender()
            tickSender()
            deliverToReceiver()
            flushReceiver()
            settleApplication()
            completeStoreWrites()
            completeDeadLetters()
            deliverToSender()
        }
    }

    private mutating func faultStep() {
        if connected, roll(faults.connectionDrop * 25) {
            dropConnection()
        } else if !connected, roll(0.3) {
            reconnect()
        } else if roll(faults.senderRestart * 25) {
            restartSender()
        } else if roll(faults.receiverRestart * 25) {
            restartReceiver()
        }
    }

    // MARK: The sender's spool

    private mutating func append() {
        guard appended < target else { return }
        let count = UInt64.random(in: 1...5, using: &rng)
        for _ in 0..<count {
            appended += 1
            let size = Int.random(in: 1...120, using: &rng)
            var payload = Array("m\(appended)g\(generation)-".utf8)
            while payload.count < size { payload.append(UInt8(truncatingIfNeeded: appended &+ UInt64(payload.count))) }
            payloads[appended] = payload
            if roll(0.05) {
                expiries[appended] = wall + Int64.random(in: 0...300, using: &rng) * 1_000_000
            } else {
                expiries[appended] = nil
            }
        }
        if roll(0.5) {
            makeDurable(appended)
        } else {
            durability.append(.init(value: appended, dueStep: step + Int.random(in: 1...5, using: &rng)))
        }
    }

    private mutating func makeDurable(_ mark: UInt64) {
        guard mark > durableMark else { return }
        durableMark = mark
        sender.durable(upTo: mark)
    }

    private mutating func completeDurability() {
        while let first = durability.first, first.dueStep <= step {
            durability.removeFirst()
            makeDurable(first.value)
        }
    }

    private func records(from sequence: UInt64, limit: Int) -> [SpoolRecord] {
        let start = max(sequence, spoolAcknowledged + 1)
        guard start <= appended else { return [] }
        let end = min(appended, start + UInt64(limit) - 1)
        return (start...end).map {
            SpoolRecord(sequenceNumber: $0, enqueuedAt: 0, expiresAt: expiries[$0], attempt: 1, flags: 0, payload: payloads[$0]!)
        }
    }

    // MARK: The sender

    private mutating func pumpSender() {
        if sender.helloDue(now: now) {
            let hello = WireEncoder.encode(.hello(sender.hello(nextSequence: appended + 1)))
            let sent = trySendOut(hello)
            if tracing { print("[\(step)] HELLO sent: \(sent), link \(sender.link)") }
            sender.helloSent(sent, now: now)
        }
        var actions: [SenderStream.Action] = []
        while let window = sender.sendWindow() {
            if window.from > durableMark || window.limit > durableMark {
                fail("send window \(window) beyond the durable mark \(durableMark)")
            }
            if window.limit > sender.processedUpTo + UInt64(settings.window) {
                fail("send window \(window) beyond the in-flight window above \(sender.processedUpTo)")
            }
            let available = records(from: window.from, limit: min(window.count, Int.random(in: 1...8, using: &rng)))
            let frame = sender.frame(for: window, records: available, wall: wall, into: &actions)
            if tracing { print("[\(step)] pump \(window): \(available.count) records from \(available.first?.sequenceNumber ?? 0), batch \(frame.batch.map(\.sequence)), next \(frame.next)") }
            if frame.batch.isEmpty {
                guard frame.next > window.from else { break }
                sender.skip(to: frame.next)
                continue
            }
            for item in frame.batch where item.sequence > durableMark {
                fail("DATA carries \(item.sequence) above the durable mark \(durableMark)")
            }
            guard trySendOut(frame.bytes) else { break }
            _ = sender.sent(frame, now: now)
        }
        perform(actions)
    }

    private mutating func tickSender() {
        var actions: [SenderStream.Action] = []
        _ = sender.tick(now: now, nextSequence: appended + 1, into: &actions)
        perform(actions)
    }

    private mutating func perform(_ actions: [SenderStream.Action]) {
        for action in actions {
            switch action {
            case .report(let mark, let individually):
                report(mark, individually)
            case .deadLetter(let sequence, let outcome, _, _):
                if reported[sequence] != outcome { fail("dead letter for \(sequence) as \(outcome), reported \(String(describing: reported[sequence]))") }
                deadLettersUnstored.insert(sequence)
                deadLetterOutcomes[sequence] = outcome
                deadLettersPending.append(.init(value: sequence, dueStep: step + Int.random(in: 0...20, using: &rng)))
            case .acknowledgeSpool(let mark):
                acknowledgeSpool(mark)
            case .refused(let reason, let label):
                fail("the sender refused a frame: \(label) (\(reason))")
            case .unsupportedProtocol, .protocolVersion:
                fail("the sender saw VERSIONS")
            case .countProcessed, .connected, .disconnected, .timedOut, .askedProcessed, .roundTrip, .peerLimits:
                break
            }
        }
    }

    private mutating func report(_ mark: UInt64, _ individually: [(UInt64, Outcome)]) {
        for (sequence, outcome) in individually {
            if reported[sequence] != nil || sequence <= max(reportedUpTo, initialProcessed) {
                fail("\(sequence) reported twice by sender incarnation \(senderIncarnation) (now \(outcome))")
            }
            reported[sequence] = outcome
            check(sequence, outcome)
        }
        if mark > reportedUpTo {
            for sequence in (max(reportedUpTo, initialProcessed) + 1)...mark where reported[sequence] == nil {
                reported[sequence] = .processed
                check(sequence, .processed)
            }
            reportedUpTo = mark
        }
    }

    /// Checks one reported outcome against the application's verdict.
    private mutating func check(_ sequence: UInt64, _ outcome: Outcome) {
        everReported.insert(sequence)
        if sequence > durableMark { fail("outcome of \(sequence) reported above the durable mark \(durableMark)") }
        let given = verdict[sequence]
        switch outcome {
        case .processed:
            switch given {
            case .some(.none):
                break
            case .some(.some(let reason)):
                if heard.contains(sequence) {
                    fail("\(sequence) reported processed though this sender heard its rejection (\(reason))")
                } else if decidedEarlier.contains(sequence) {
                    if tracing { print("[\(step)] EXCUSED sender restart: \(sequence)") }
                    excused.verdictForgottenBySenderRestart += 1
                } else if verdictsLost.contains(sequence) {
                    if tracing { print("[\(step)] EXCUSED lost: \(sequence)") }
                    excused.verdictLostOnTheWay += 1
                } else if rejectedBeforeReceiverRestart.contains(sequence) {
                    excused.verdictForgottenByReceiverRestart += 1
                } else if takingWelcome {
                    knownBug("WELCOME overtook the OUTCOMES entry of \(sequence) (rejected: \(reason)): reported processed")
                    excused.welcomeOvertookOutcomes += 1
                } else {
                    fail("\(sequence) reported processed though the application rejected it (\(reason)) and no OUTCOMES entry for it was ever sent")
                }
            case .none:
                // Never delivered: only a record with an expiry may end so (expired on
                // arrival, or a tombstone), and its outcome is `expired` unless the OUTCOMES
                // entry saying so was lost.
                if expiries[sequence] == nil {
                    fail("\(sequence) reported processed though the application never settled it")
                } else if heard.contains(sequence) {
                    fail("\(sequence) reported processed though this sender heard it expired")
                } else if decidedEarlier.contains(sequence) {
                    if tracing { print("[\(step)] EXCUSED sender restart (expiry): \(sequence)") }
                    excused.verdictForgottenBySenderRestart += 1
                } else if verdictsLost.contains(sequence) {
                    excused.verdictLostOnTheWay += 1
                } else if receiverIncarnation > 0 {
                    excused.verdictForgottenByReceiverRestart += 1
                } else if takingWelcome {
                    knownBug("WELCOME overtook the OUTCOMES entry of \(sequence) (expired on arrival): reported processed")
                    excused.welcomeOvertookOutcomes += 1
                } else {
                    fail("\(sequence) expired on arrival but reported processed, and no OUTCOMES entry for it was ever sent")
                }
            }
        case .rejected(let reason):
            if given != .some(.some(reason)) {
                fail("\(sequence) reported rejected (\(reason)); the application's verdict: \(String(describing: given))")
            }
        case .expired:
            if expiries[sequence] == nil { fail("\(sequence) reported expired but has no expiry") }
        case .deadLettered(let reason):
            fail("\(sequence) dead-lettered (\(reason)) with no attempt limit")
        }
    }

    private mutating func acknowledgeSpool(_ mark: UInt64) {
        if mark > sender.processedUpTo { fail("spool acknowledged to \(mark) beyond processed \(sender.processedUpTo)") }
        if let pending = deadLettersUnstored.filter({ $0 <= mark }).min() {
            fail("spool acknowledged to \(mark) while the dead letter of \(pending) is not stored")
        }
        if mark > (durableState?.processedUpTo ?? 0) {
            fail("spool acknowledged to \(mark) while the receiver's durable mark is \(durableState?.processedUpTo ?? 0)")
        }
        for sequence in (spoolAcknowledged + 1)...max(mark, spoolAcknowledged + 1) where sequence <= mark && !everReported.contains(sequence) {
            fail("spool acknowledged \(sequence) whose outcome was never reported")
        }
        if mark > spoolAcknowledged {
            for sequence in (spoolAcknowledged + 1)...mark { payloads[sequence] = nil }
            spoolAcknowledged = mark
        }
        sender.spoolAcknowledged(upTo: mark, now: now)
    }

    private mutating func completeDeadLetters() {
        var remaining: [Pending<UInt64>] = []
        for letter in deadLettersPending {
            if letter.dueStep <= step {
                deadLettersUnstored.remove(letter.value)
                storedDeadLetters[letter.value] = deadLetterOutcomes[letter.value]
                sender.deadLetterStored(letter.value)
            } else {
                remaining.append(letter)
            }
        }
        deadLettersPending = remaining
    }

    /// A crash of the sender: what was durable stays, everything in memory goes, records not
    /// yet durable are lost (their numbers are used again).
    private mutating func restartSender() {
        senderIncarnation += 1
        for (sequence, outcome) in reported where storedDeadLetters[sequence] == nil {
            if outcome != .processed { decidedEarlier.insert(sequence) }
        }
        durability.removeAll()
        if appended > durableMark {
            for sequence in (durableMark + 1)...appended { payloads[sequence] = nil; expiries[sequence] = nil }
        }
        appended = durableMark
        generation += 1
        deadLettersPending.removeAll()
        deadLettersUnstored.removeAll()
        reported.removeAll()
        heard.removeAll()
        reportedUpTo = spoolAcknowledged
        initialProcessed = spoolAcknowledged
        sender = SenderStream(stream: stream, settings: settings, durableUpTo: durableMark, processedUpTo: spoolAcknowledged,
                              now: now, seed: rng.next())
        // As OutboundPeer does: numbers with stored dead letters stay decided, and the outcome
        // book starts with them.
        sender.restore(decided: storedDeadLetters)
        for (sequence, outcome) in storedDeadLetters where sequence > spoolAcknowledged && sequence <= durableMark {
            reported[sequence] = outcome
        }
        if connected { dropConnection() }
    }

    // MARK: The network

    /// DEALER → ROUTER. False when the frame could not go (no connection, queue full).
    private mutating func trySendOut(_ bytes: [UInt8]) -> Bool {
        guard connected, !roll(faults.queueFull) else { return false }
        var queue = toReceiver
        _ = enqueue(bytes, entries: [], into: &queue, loss: faults.lossOut, duplicate: faults.duplicateOut, reorder: faults.reorderOut)
        toReceiver = queue
        return true
    }

    /// ROUTER → DEALER. False when the frame could not go (no connection, queue full): the
    /// receiver's executor then stops sending that turn's frames.
    @discardableResult
    private mutating func sendBack(_ bytes: [UInt8]) -> Bool {
        var entries: [UInt64] = []
        if case .outcomes(let outcomes)? = try? decoder.decode(bytes) {
            entries = outcomes.entries.map(\.sequence)
            verdictsSent.formUnion(entries)
        }
        if tracing { print("[\(step)] receiver sends \(bytes.count) bytes, connected \(connected)") }
        guard connected, !roll(faults.queueFull) else {
            verdictsLost.formUnion(entries)
            return false
        }
        var queue = toSender
        let (lost, overtaken) = enqueue(bytes, entries: entries, into: &queue, loss: faults.lossBack, duplicate: faults.duplicateBack,
                                        reorder: faults.reorderBack)
        if lost { verdictsLost.formUnion(entries) }
        verdictsLost.formUnion(overtaken)
        toSender = queue
        return true
    }

    /// Puts a frame on the way (lost, duplicated or put in front of others by chance).
    /// Returns whether it was lost, and the OUTCOMES entries it went in front of.
    private mutating func enqueue(_ bytes: [UInt8], entries: [UInt64], into queue: inout [InFlight], loss: Double, duplicate: Double,
                                  reorder: Double) -> (lost: Bool, overtaken: [UInt64]) {
        guard !roll(loss) else { return (true, []) }
        var overtaken: [UInt64] = []
        let copies = roll(duplicate) ? 2 : 1
        for _ in 0..<copies {
            if !queue.isEmpty, roll(reorder) {
                let position = Int.random(in: 0..<queue.count, using: &rng)
                for behind in queue[position...] { overtaken += behind.entries }
                queue.insert(InFlight(bytes: bytes, entries: entries), at: position)
            } else {
                queue.append(InFlight(bytes: bytes, entries: entries))
            }
        }
        return (false, overtaken)
    }

    private mutating func dropConnection() {
        drops += 1
        connected = false
        for frame in toSender { verdictsLost.formUnion(frame.entries) }
        toReceiver.removeAll()
        toSender.removeAll()
        var actions: [SenderStream.Action] = []
        sender.connectionChanged(.disconnected, now: now, into: &actions)
        perform(actions)
    }

    /// Unsticks a sender stuck by a known bug: every frame on the way arrives, then a new
    /// connection (whose WELCOME tells the sender where the receiver stands).
    private mutating func kick() {
        while !toReceiver.isEmpty || !toSender.isEmpty {
            deliverToReceiver()
            deliverToSender()
        }
        dropConnection()
        reconnect()
    }

    private mutating func reconnect() {
        connected = true
        var actions: [SenderStream.Action] = []
        sender.connectionChanged(.handshakeSucceeded, now: now, into: &actions)
        perform(actions)
    }

    private mutating func deliverToReceiver() {
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            guard !toReceiver.isEmpty else { return }
            let bytes = toReceiver.removeFirst().bytes
            let frame: WireFrame
            do { frame = try decoder.decode(bytes) } catch {
                fail("the receiver cannot decode a frame: \(error)")
                return
            }
            receive(frame)
        }
    }

    private mutating func receive(_ frame: WireFrame) {
        switch frame {
        case .hello(let hello):
            if tracing { print("[\(step)] receiver takes \(hello)") }
            if hello.stream != stream { fail("HELLO for stream \(hello.stream)") }
            if hello.nextSequence > appended + 1 {
                fail("HELLO says next sequence \(hello.nextSequence) beyond the spool's \(appended + 1)")
            }
            if receiver == nil {
                receiver = ReceiverStream(sender: "s", stream: stream, stored: durableState, verdicts: durableVerdicts)
                receiver!.limits = .init(window: UInt32(receiverWindow), maxMessageSize: 1 << 16)
            }
            // As InboundSide does: the sender has heard every verdict below its mark.
            durableVerdicts = durableVerdicts.filter { $0.key >= hello.firstUnacknowledged }
            switch receiver!.hello(firstUnacknowledged: hello.firstUnacknowledged, nonce: hello.nonce) {
            case .answer(let frames): for bytes in frames { guard sendBack(bytes) else { break } }
            case .recordStart(let mark): storeWrites.append(.init(value: .begin(mark), dueStep: step + Int.random(in: 0...6, using: &rng)))
            }
        case .data(let batch):
            if batch.stream != stream { fail("DATA for stream \(batch.stream)") }
            for record in batch.records where !record.isTombstone {
                if record.sequence > durableMark { fail("DATA for \(record.sequence) above the durable mark \(durableMark)") }
                if let payload = payloads[record.sequence], Array(record.payload) != payload, record.sequence > spoolAcknowledged {
                    fail("DATA for \(record.sequence) carries another payload")
                }
            }
            guard receiver?.ready == true else { return }  // unknown_stream: DATA before the HELLO
            _ = receiver!.receive(batch.records, window: receiverWindow, wall: wall, now: now, coalescing: coalescing)
        default:
            fail("the receiver got \(frame)")
        }
    }

    private mutating func deliverToSender() {
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            guard !toSender.isEmpty else { return }
            let bytes = toSender.removeFirst().bytes
            let frame: WireFrame
            do { frame = try decoder.decode(bytes) } catch {
                fail("the sender cannot decode a frame: \(error)")
                return
            }
            if case .outcomes(let outcomes) = frame {
                for entry in outcomes.entries { heard.insert(entry.sequence) }
            }
            var actions: [SenderStream.Action] = []
            if tracing { print("[\(step)] sender takes \(frame); link \(sender.link) processed \(sender.processedUpTo) received \(sender.receivedUpTo) next \(sender.nextToSend) highest \(sender.highestSent)") }
            sender.received(frame, now: now, into: &actions)
            if tracing { print("[\(step)]   → link \(sender.link) next \(sender.nextToSend)") }
            if case .welcome = frame { takingWelcome = true }
            perform(actions)
            takingWelcome = false
        }
    }

    // MARK: The receiver and its store

    private mutating func flushReceiver() {
        guard receiver != nil else { return }
        var reserve = handOut()
        while let mark = reserve {
            if roll(0.5) {
                // Handed out before the sync (the reservation write survives a process crash).
                apply(.reserve(mark))
                receiver!.reserved(upTo: mark)
                reserve = handOut()
            } else {
                storeWrites.append(.init(value: .reserve(mark), dueStep: step + Int.random(in: 0...6, using: &rng)))
                break
            }
        }
        let marks = receiver!.takeMarks()
        if !marks.isEmpty {
            storeWrites.append(.init(value: .mark(marks, verdicts: receiver!.verdicts(among: marks)), dueStep: step + Int.random(in: 0...6, using: &rng)))
        }
        for frame in receiver!.dueFrames(now: now) {
            guard sendBack(frame) else {
                receiver!.dueFramesNotSent(senderConnected: connected)
                break
            }
        }
    }

    private mutating func handOut() -> UInt64? {
        var deliveries: [ReceiverStream.Delivery] = []
        let mark = receiver!.handOut(window: receiverWindow) { deliveries.append($0) }
        for delivery in deliveries { deliver(delivery) }
        return mark
    }

    private mutating func deliver(_ delivery: ReceiverStream.Delivery) {
        let sequence = delivery.sequence
        if sequence <= lastDeliveredThisIncarnation {
            fail("\(sequence) delivered after \(lastDeliveredThisIncarnation) (order)")
        }
        lastDeliveredThisIncarnation = sequence
        if deliveredThisIncarnation.contains(sequence) { fail("\(sequence) delivered twice by one receiver incarnation") }
        if delivery.redelivered { redeliveries += 1 }
        if delivered.contains(sequence), !delivery.redelivered {
            fail("\(sequence) delivered again without the redelivered flag")
        }
        if durableState?.isProcessed(sequence) == true {
            fail("\(sequence) delivered though its processed mark is durable")
        }
        if sequence > 1 {
            for below in stride(from: sequence - 1, through: 1, by: -1) {
                if delivered.contains(below) || deliveredThisIncarnation.contains(below) { break }
                if expiries[below] != nil || (durableState?.isProcessed(below) ?? false) { continue }
                fail("\(sequence) delivered before \(below) (gap)")
                break
            }
        }
        if delivery.payload != payloads[sequence] {
            fail("\(sequence) delivered with the wrong payload")
        }
        delivered.insert(sequence)
        deliveredThisIncarnation.insert(sequence)
        if verdict[sequence] == nil {
            verdict[sequence] = roll(0.25) ? .some("refusé \(sequence) ✗") : .some(nil)
        }
        holding.append(.init(sequence: sequence, dueStep: step + Int.random(in: 0...30, using: &rng)))
    }

    private mutating func settleApplication() {
        guard receiver != nil else { return }
        var remaining: [Settlement] = []
        for settlement in holding {
            guard settlement.dueStep <= step else {
                remaining.append(settlement)
                continue
            }
            let sequence = settlement.sequence
            let reason = verdict[sequence] ?? nil
            if reason != nil { rejectedThisIncarnation.insert(sequence) }
            receiver!.settle(sequence, verdict: reason.map { .init(sequence: sequence, code: .rejected, reason: $0) })
        }
        holding = remaining
    }

    private mutating func apply(_ write: StoreWrite) {
        var state = durableState ?? InboundStreamState(sender: "s", streamID: stream)
        switch write {
        case .begin(let mark):
            if mark > state.processedUpTo {
                state.processedUpTo = mark
                state.processedAbove = state.processedAbove.filter { $0 > mark }
                while state.processedAbove.remove(state.processedUpTo + 1) != nil { state.processedUpTo += 1 }
            }
            state.reservedUpTo = max(state.reservedUpTo, state.processedUpTo)
        case .reserve(let mark):
            state.reservedUpTo = max(state.reservedUpTo, mark)
        case .mark(let sequences, let verdicts):
            durableVerdicts.merge(verdicts) { _, new in new }
            for sequence in sequences where !state.isProcessed(sequence) {
                if sequence == state.processedUpTo + 1 {
                    state.processedUpTo = sequence
                    while state.processedAbove.remove(state.processedUpTo + 1) != nil { state.processedUpTo += 1 }
                } else {
                    state.processedAbove.insert(sequence)
                }
                state.reservedUpTo = max(state.reservedUpTo, state.processedUpTo)
            }
        }
        durableState = state
    }

    private mutating func completeStoreWrites() {
        while let first = storeWrites.first, first.dueStep <= step {
            storeWrites.removeFirst()
            apply(first.value)
            switch first.value {
            case .begin:
                for frame in receiver!.startRecorded() { guard sendBack(frame) else { break } }
            case .reserve(let mark):
                receiver!.reserved(upTo: mark)
                flushReceiver()
            case .mark(let sequences, _):
                receiver!.marked(sequences, coalescing: coalescing, now: now)
                if tracing { print("[\(step)] receiver marked \(sequences): processed \(receiver!.processedUpTo), quiet \(receiver!.isQuiet), next deadline \(String(describing: receiver!.nextDeadline.map { $0 - t0 })), now \(now - t0)") }
            }
        }
    }

    /// A crash of the receiver: writes not yet durable are lost (a random prefix of them made
    /// it), so are the machine, the messages the application holds and the connection.
    private mutating func restartReceiver() {
        let survivors = Int.random(in: 0...storeWrites.count, using: &rng)
        for write in storeWrites.prefix(survivors) { apply(write.value) }
        storeWrites.removeAll()
        receiver = nil
        receiverIncarnation += 1
        rejectedBeforeReceiverRestart.formUnion(rejectedThisIncarnation)
        rejectedThisIncarnation.removeAll()
        // Rejections still held (settled after the restart by nobody) stay possible.
        holding.removeAll()
        deliveredThisIncarnation.removeAll()
        lastDeliveredThisIncarnation = 0
        if connected { dropConnection() }
    }
}
