import CoreMetrics
import CourierSpool
import Logging
import ZeroMQ

/// Everything this node receives, owned by the I/O thread: the ROUTER socket and one
/// ``ReceiverStream`` per (sender, stream), whose actions it carries out: frames to the
/// sender, durable writes to the inbound store, messages to the application.
final class InboundSide {
    private struct Key: Hashable {
        var sender: String
        var stream: UInt64
    }

    /// One stream's machine, in a box so that each event mutates it in place with one access
    /// (a struct in the dictionary would be hashed for every event).
    private final class Slot {
        var machine: ReceiverStream
        /// When the sender last said HELLO on this stream (retirement picks the oldest).
        var lastHello = ContinuousClock.now
        /// Where the application's iterator records what it took of this stream.
        let taken: TakenSlot?

        init(_ machine: ReceiverStream, taken: TakenSlot?) {
            self.machine = machine
            self.taken = taken
        }
    }

    let router: Socket
    private let core: NodeCore
    private let store: InboundStore
    private var streams: [Key: Slot] = [:]
    /// The stream each sender last said hello on.
    private var current: [String: UInt64] = [:]
    /// The streams of each sender held in `streams`.
    private var streamsOf: [String: Set<UInt64>] = [:]
    private var touched: Set<Key> = []
    private var stopping = false
    /// When each sender was last told the versions this node speaks.
    private var versionsAnswered: [String: ContinuousClock.Instant] = [:]
    /// Per-sender counters, made on first use.
    private var senderMetrics: [String: SenderMetrics] = [:]

    init(router: Socket, core: NodeCore, store: InboundStore) {
        self.router = router
        self.core = core
        self.store = store
    }

    // MARK: From the network

    /// One message from the ROUTER: [routing id, frame].
    func receive(_ message: Message) {
        guard message.frames.count == 2, let sender = String(validating: message.frames[0], as: UTF8.self),
              !sender.isEmpty else {
            core.refused(from: String(decoding: message.frames.first ?? [], as: UTF8.self),
                         reason: "\(message.frames.count - 1) frames instead of 1", label: "frame_count")
            return
        }
        if core.keys != nil, message.userID != sender {
            // Authenticated as one node, speaking as another: never applied.
            core.refused(from: sender, reason: "routing id \(sender) does not match the id bound to the sender's key (\(message.userID ?? "none"))",
                         label: "impersonation")
            return
        }
        let frame: WireFrame
        do { frame = try core.decoder.decode(message.frames[1]) } catch {
            core.refused(from: sender, reason: error.description, label: error.metricLabel)
            if case .unsupportedVersion = error { answerVersions(to: sender) }
            return
        }
        switch frame {
        case .hello(let hello): handleHello(hello, from: sender)
        case .data(let batch): handleData(batch, from: sender)
        case .welcome, .ack, .outcomes, .versions:
            core.refused(from: sender, reason: "a receiver's frame sent to a receiver", label: "wrong_direction")
        }
    }

    private func handleHello(_ hello: WireFrame.Hello, from sender: String) {
        let key = Key(sender: sender, stream: hello.stream)
        let slot: Slot
        if let known = streams[key] {
            slot = known
        } else {
            guard admit(key) else { return }
            let storeKey = InboundStreamKey(sender: sender, streamID: hello.stream)
            let (stored, verdicts) = store.stateAndVerdicts(sender: sender, streamID: hello.stream)
            var machine = ReceiverStream(sender: sender, stream: hello.stream, stored: stored, verdicts: verdicts,
                                         taken: store.takenMarks?.found[storeKey])
            let configuration = core.configuration
            machine.limits = .init(window: UInt32(configuration.inFlightWindow), maxMessageSize: UInt32(clamping: configuration.maxMessageSize))
            slot = Slot(machine, taken: store.takenMarks?.slot(for: storeKey))
            streams[key] = slot
            streamsOf[sender, default: []].insert(hello.stream)
        }
        slot.lastHello = .now
        if current[sender] != hello.stream {
            if let previous = current[sender] {
                core.logger.notice("sender started a new stream", metadata: [
                    "sender": "\(sender)", "old-stream": "\(String(previous, radix: 16))", "stream": "\(String(hello.stream, radix: 16))"])
            }
            current[sender] = hello.stream
        }
        // The sender has heard every verdict below its first unacknowledged number.
        // (The store's lock only when there is something to forget: HELLO floods are common.)
        if slot.machine.keepsVerdicts(upTo: hello.firstUnacknowledged - 1) {
            store.forgetVerdicts(sender: sender, streamID: hello.stream, upTo: hello.firstUnacknowledged - 1)
        }
        switch slot.machine.hello(firstUnacknowledged: hello.firstUnacknowledged, nonce: hello.nonce) {
        case .answer(let frames):
            sendInOrder(frames, to: sender, of: slot)
        case .recordStart(let mark):
            // Record the stream's start (or the sender's progress) durably before answering.
            let mailbox = core.mailbox
            store.begin(sender: sender, streamID: hello.stream, processedUpTo: mark) { result in
                switch result {
                case .success: mailbox.post(.streamReady(sender: sender, stream: hello.stream))
                case .failure(let error): mailbox.post(.storageFailed(error))
                }
            }
        }
    }

    /// A sender spoke a protocol version this node does not: tell it which versions it does
    /// (VERSIONS), at most once a second per sender, so that it can report "unsupported
    /// version" rather than take the silence for a peer that is down.
    private func answerVersions(to sender: String) {
        let now = ContinuousClock.now
        if let last = versionsAnswered[sender], now - last < .seconds(1) { return }
        if versionsAnswered.count >= 1024 { versionsAnswered.removeAll() }
        versionsAnswered[sender] = now
        send(WireEncoder.encode(.versions(.init(supported: Wire.versions(upTo: core.configuration.latestProtocolVersion))), version: 1), to: sender)
    }

    /// Makes room for a new stream: retires the sender's least recently greeted stream when
    /// it has ``NodeConfiguration/maxStreamsPerSender``, and refuses the stream when the node
    /// tracks ``NodeConfiguration/maxInboundStreams``.
    private func admit(_ key: Key) -> Bool {
        let configuration = core.configuration
        if let own = streamsOf[key.sender], own.count >= configuration.maxStreamsPerSender,
           let oldest = own.map({ Key(sender: key.sender, stream: $0) }).min(by: { (streams[$0]?.lastHello ?? .now) < (streams[$1]?.lastHello ?? .now) }) {
            retire(oldest)
        }
        guard streams.count < configuration.maxInboundStreams else {
            core.refused(from: key.sender, reason: "HELLO for a new stream while the node tracks its limit of \(configuration.maxInboundStreams) streams (maxInboundStreams)",
                         label: "stream_limit")
            return false
        }
        return true
    }

    private func retire(_ key: Key) {
        streams[key] = nil
        touched.remove(key)
        streamsOf[key.sender]?.remove(key.stream)
        if streamsOf[key.sender]?.isEmpty == true { streamsOf[key.sender] = nil }
        if current[key.sender] == key.stream { current[key.sender] = nil }
        store.retire(sender: key.sender, streamID: key.stream)
        store.takenMarks?.release(InboundStreamKey(sender: key.sender, streamID: key.stream))
        core.retired(sender: key.sender, stream: key.stream)
    }

    /// The stream's record is durable: answer the hello that asked.
    func streamReady(sender: String, stream id: UInt64) {
        guard let slot = streams[Key(sender: sender, stream: id)] else { return }
        sendInOrder(slot.machine.startRecorded(), to: sender, of: slot)
    }

    private func handleData(_ batch: WireFrame.DataBatch, from sender: String) {
        let key = Key(sender: sender, stream: batch.stream)
        guard let slot = streams[key], slot.machine.ready, current[sender] == batch.stream else {
            core.refused(from: sender, reason: "data for a stream without a hello", label: "unknown_stream", hostile: false)
            return
        }
        let counts = slot.machine.receive(batch.records, window: core.configuration.inFlightWindow, wall: WallClock.nanoseconds,
                                          now: .now, coalescing: core.configuration.ackCoalescing)
        if counts.duplicates > 0 { core.nodeMetrics.duplicates.increment(by: counts.duplicates) }
        if counts.beyondWindow > 0 { core.nodeMetrics.beyondWindow.increment(by: counts.beyondWindow) }
        touched.insert(key)
    }

    // MARK: From the application and the store

    /// The application's verdicts, in the order it gave them. Runs of the same stream (the
    /// usual case) look the stream up once.
    func settle(_ settlements: [Settlement]) {
        var key: Key?
        var slot: Slot?
        var counters: SenderMetrics?
        // Counted per run of one sender's settlements, not per message.
        var (acknowledged, rejected) = (0, 0)
        func count() {
            if acknowledged > 0 { counters?.acknowledged.increment(by: acknowledged) }
            if rejected > 0 { counters?.rejected.increment(by: rejected) }
            (acknowledged, rejected) = (0, 0)
        }
        for settlement in settlements {
            if key?.stream != settlement.stream || key?.sender != settlement.sender {
                count()
                let next = Key(sender: settlement.sender, stream: settlement.stream)
                key = next
                slot = streams[next]
                if slot != nil { touched.insert(next) }
                counters = metrics(for: settlement.sender)
            }
            let sequence = settlement.sequence
            guard let slot, slot.machine.settle(sequence, verdict: settlement.rejection.map { .init(sequence: sequence, code: .rejected, reason: $0) }) else {
                continue
            }
            if settlement.rejection == nil { acknowledged += 1 } else { rejected += 1 }
        }
        count()
    }

    private func metrics(for sender: String) -> SenderMetrics {
        if let existing = senderMetrics[sender] { return existing }
        let made = SenderMetrics(sender: sender)
        senderMetrics[sender] = made
        return made
    }

    func marked(sender: String, stream id: UInt64, sequences: [UInt64]) {
        let key = Key(sender: sender, stream: id)
        streams[key]?.machine.marked(sequences, coalescing: core.configuration.ackCoalescing, now: .now)
        touched.insert(key)
    }

    func reserved(sender: String, stream id: UInt64, upTo mark: UInt64) {
        let key = Key(sender: sender, stream: id)
        streams[key]?.machine.reserved(upTo: mark)
        touched.insert(key)
    }

    // MARK: Stopping

    /// A shutdown began: hand out nothing more, and lower each stream's durable reservation
    /// to what the application really took, so that messages yielded but never taken are
    /// not flagged `redelivered` after the next start.
    func beginStopping(taken: [DeliveryTracker.Key: UInt64]) {
        stopping = true
        let mailbox = core.mailbox
        for (key, slot) in streams {
            guard let mark = slot.machine.lowerReservation(taken: taken[DeliveryTracker.Key(sender: key.sender, stream: key.stream)]) else { continue }
            store.lowerReservation(sender: key.sender, streamID: key.stream, to: mark) { result in
                if case .failure(let error) = result { mailbox.post(.storageFailed(error)) }
                mailbox.post(.reservationLowered(sender: key.sender, stream: key.stream))
            }
        }
    }

    func reservationLowered(sender: String, stream id: UInt64) {
        streams[Key(sender: sender, stream: id)]?.machine.reservationLowered()
    }

    /// Sends every owed acknowledgement at the next flush, without coalescing delay.
    func acknowledgeEverythingNow() {
        for slot in streams.values { slot.machine.acknowledgeNow() }
    }

    /// Whether nothing settled by the application still waits to be recorded or acknowledged.
    var isQuiet: Bool { streams.values.allSatisfy(\.machine.isQuiet) }

    // MARK: Each turn of the loop

    /// Hands out what can be, submits durable writes, sends what is due. Returns the next
    /// deadline (a coalesced acknowledgement).
    func flush(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        let mailbox = core.mailbox
        var batch = DeliveryBatch()
        for key in touched {
            guard let slot = streams[key] else { continue }
            if !stopping {
                let before = batch.messages.count
                defer {
                    if batch.messages.count > before { metrics(for: key.sender).delivered.increment(by: batch.messages.count - before) }
                }
                var reserve = handOut(slot, key: key, into: &batch)
                // Usually the reservation is written here and the hand-out goes on at once;
                // when the store must sync first, the rest waits for its `reserved` command.
                while let target = reserve {
                    let now = store.reserveForHandOut(sender: key.sender, streamID: key.stream, upTo: target) { result in
                        switch result {
                        case .success: mailbox.post(.reserved(sender: key.sender, stream: key.stream, upTo: target))
                        case .failure(let error): mailbox.post(.storageFailed(error))
                        }
                    }
                    guard now else { break }
                    slot.machine.reserved(upTo: target)
                    reserve = handOut(slot, key: key, into: &batch)
                }
                batch.endRun(key: DeliveryTracker.Key(sender: key.sender, stream: key.stream), taken: slot.taken)
            }
            let marks = slot.machine.takeMarks()
            if !marks.isEmpty {
                let verdicts = slot.machine.verdicts(among: marks)
                store.markProcessed(sender: key.sender, streamID: key.stream, sequenceNumbers: marks, verdicts: verdicts) { result in
                    switch result {
                    case .success: mailbox.post(.settled(sender: key.sender, stream: key.stream, sequences: marks))
                    case .failure(let error): mailbox.post(.storageFailed(error))
                    }
                }
            }
        }
        touched.removeAll(keepingCapacity: true)
        core.deliver(batch)
        var next: ContinuousClock.Instant?
        for (key, slot) in streams {
            let frames = slot.machine.dueFrames(now: now)
            if !frames.isEmpty {
                core.logger.trace("acknowledging", metadata: ["sender": "\(key.sender)", "processed-up-to": "\(slot.machine.processedUpTo)", "frames": "\(frames.count)"])
            }
            sendInOrder(frames, to: key.sender, of: slot)
            if let due = slot.machine.nextDeadline { next = min(next ?? due, due) }
        }
        return next
    }

    /// Hands out what `slot`'s stream has ready into `batch`; returns the mark to reserve
    /// up to when more must be reserved first.
    private func handOut(_ slot: Slot, key: Key, into batch: inout DeliveryBatch) -> UInt64? {
        let core = self.core
        return slot.machine.handOut(window: core.configuration.inFlightWindow) { delivery in
            batch.messages.append(IncomingMessage(
                sender: key.sender, stream: key.stream, sequence: delivery.sequence, redelivered: delivery.redelivered,
                attempt: Int(delivery.attempt), headers: MessageHeaders(block: delivery.headers), payload: delivery.payload, core: core))
        }
    }

    /// Sends `frames` in order; at the first that cannot go, stops (nothing may overtake it)
    /// and has the stream send its verdicts again.
    private func sendInOrder(_ frames: [[UInt8]], to sender: String, of slot: Slot) {
        for frame in frames {
            switch send(frame, to: sender) {
            case .sent: continue
            case .queueFull: slot.machine.dueFramesNotSent(senderConnected: true)
            case .gone: slot.machine.dueFramesNotSent(senderConnected: false)
            }
            return
        }
    }

    private enum SendResult {
        case sent
        /// The sender's queue is full: try again later.
        case queueFull
        /// The sender is not connected (or the send failed): it says HELLO again when it is.
        case gone
    }

    @discardableResult
    private func send(_ frame: [UInt8], to sender: String) -> SendResult {
        do {
            if try router.trySend([Array(sender.utf8), frame]) { return .sent }
            core.logger.debug("sender's queue is full; the frame goes again later", metadata: ["sender": "\(sender)"])
            return .queueFull
        } catch where error.code == .hostUnreachable {
            // The sender is not connected now; it will say hello again and resynchronise.
            return .gone
        } catch {
            core.logger.warning("cannot answer sender", metadata: ["sender": "\(sender)", "error": "\(error)"])
            return .gone
        }
    }
}
