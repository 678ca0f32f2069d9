import CourierSpool
import Logging
import ZeroMQ

/// The node's I/O thread: it owns every ZeroMQ socket (the ROUTER, each peer's DEALER and
/// their monitors) and all delivery state, and runs one loop: take commands from the
/// mailbox, send what may be sent, poll, handle what arrived, run timers.
final class IOLoop {
    private let core: NodeCore
    private let context: Context
    private let poller: Poller
    private let inbound: InboundSide?
    private let zap: ZAPHandler?
    private var peers: [String: OutboundPeer] = [:]
    private var stopDeadline: ContinuousClock.Instant?
    private var closeAt: ContinuousClock.Instant?
    private var statisticsDue = ContinuousClock.now

    private init(core: NodeCore, context: Context, poller: Poller, inbound: InboundSide?, zap: ZAPHandler?) {
        self.core = core
        self.context = context
        self.poller = poller
        self.inbound = inbound
        self.zap = zap
    }

    /// Runs the loop on the calling (dedicated) thread. `started` learns the bound
    /// endpoints, or why the node could not start; it is called before the loop begins.
    static func run(core: NodeCore, logs: [PeerConfiguration: OutboundLog],
                    started: @Sendable (Result<[String], CourierError>) -> Void) {
        let loop: IOLoop
        var bound: [String] = []
        do {
            let context = try Context()
            let poller = try Poller()
            var inbound: InboundSide?
            var zap: ZAPHandler?
            if let keys = core.keys {
                // The handler must exist before any CURVE handshake on this context.
                zap = try ZAPHandler(context: context, keys: keys, core: core)
                poller.register(zap!.socket)
            }
            if !core.configuration.listen.isEmpty {
                let router = try makeRouter(core: core, context: context)
                for endpoint in core.configuration.listen {
                    do { try router.bind(endpoint) } catch {
                        let code: CourierError.Code = error.code == .invalidEndpoint || error.code == .protocolNotSupported
                            ? .invalidConfiguration : .network
                        throw CourierError(code, "cannot listen on \(endpoint): \(error.message)", underlying: error)
                    }
                    bound.append((try? router.lastEndpoint()) ?? endpoint)
                }
                poller.register(router)
                inbound = InboundSide(router: router, core: core, store: core.directory.inbound)
            }
            loop = IOLoop(core: core, context: context, poller: poller, inbound: inbound, zap: zap)
            core.mailbox.attach(poller.waker)
            for (configuration, log) in logs.sorted(by: { $0.key.id < $1.key.id }) {
                try loop.add(configuration, log: log)
            }
        } catch let error as CourierError {
            started(.failure(error))
            return
        } catch {
            started(.failure(CourierError(.network, "cannot start the I/O thread: \(error)", underlying: error as? ZeroMQError)))
            return
        }
        started(.success(bound))
        // Nothing here may wait on the disk: every sync goes through the storage threads
        // (until the loop ends: closing the directory then flushes on this thread).
        NoBlockingZone.enter()
        loop.loop()
        NoBlockingZone.leave()
        loop.close()
    }

    private static func makeRouter(core: NodeCore, context: Context) throws -> Socket {
        let configuration = core.configuration
        let router = try Socket(.router, context: context)
        // Handover off: the first connection under an id keeps it, and a second one is
        // refused by libzmq until the first is gone (closed, or dead to the heartbeats). With
        // handover on, a peer could displace another's connection at will, and libzmq 4.3.4
        // aborts the process (`!_io_error`, stream_engine_base.cpp:331) when a displaced
        // connection with queued replies sends and closes while heartbeats run on the ROUTER.
        // docs/PROTOCOL.md, "Socket settings".
        try router.set(.routerHandover, false)
        try router.set(.routerMandatory, true)
        try router.set(.handshakeInterval, configuration.handshakeTimeout)
        try router.set(.maxMessageSize, Int64(configuration.maxMessageSize) * 2 + Int64(64 << 10) + Int64(HeaderBlock.maxBytes))
        try router.set(.receiveHighWaterMark, 10_000)
        try router.set(.sendHighWaterMark, 10_000)
        try router.set(.heartbeatInterval, configuration.heartbeat.interval)
        try router.set(.heartbeatTimeout, configuration.heartbeat.timeout)
        try router.set(.heartbeatTTL, configuration.heartbeat.timeout * 2)
        if let keys = core.keys {
            try router.set(.curveServer, true)
            try router.set(.curveSecretKey, keys.own.secretKey)
            try router.set(.zapDomain, "courier")
        }
        return router
    }

    private func add(_ configuration: PeerConfiguration, log: OutboundLog) throws(CourierError) {
        if let existing = peers[configuration.id] { remove(existing) }
        let peer = try OutboundPeer(configuration: configuration, log: log, context: context, core: core)
        peers[configuration.id] = peer
        poller.register(peer.dealer)
        poller.register(peer.monitor.socket)
    }

    private func remove(_ peer: OutboundPeer) {
        poller.unregister(peer.dealer)
        poller.unregister(peer.monitor.socket)
        peer.close()
        peers[peer.id] = nil
    }

    // MARK: The loop

    private func loop() {
        var commands: [Command] = []
        var settlements: [Settlement] = []
        while true {
            core.mailbox.drain(commands: &commands, settlements: &settlements)
            // Verdicts first: the application gave them before anything it posts later (a stop).
            if !settlements.isEmpty { inbound?.settle(settlements) }
            for command in commands { handle(command) }
            let now = ContinuousClock.now
            var deadline = now + .milliseconds(100)
            for peer in peers.values {
                peer.pump(now: now)
                if let due = peer.tick(now: now) { deadline = min(deadline, due) }
            }
            if let due = inbound?.flush(now: now) { deadline = min(deadline, due) }
            if let stopDeadline {
                // Stopping: wait only for settled messages to be recorded and acknowledged,
                // then give libzmq a moment to put the last frames on the wire (closing a
                // socket right after a send can drop it despite the linger: libzmq #1264).
                if let closeAt {
                    if now >= closeAt { break }
                    deadline = min(deadline, closeAt)
                } else if inbound?.isQuiet ?? true || now >= stopDeadline {
                    core.logger.debug("I/O thread stopping", metadata: ["quiet": "\(inbound?.isQuiet ?? true)"])
                    closeAt = inbound == nil ? now : now + .milliseconds(150)
                    continue
                } else {
                    deadline = min(deadline, stopDeadline)
                }
            }
            if now >= statisticsDue {
                for peer in peers.values { peer.publishStatistics() }
                statisticsDue = now + .milliseconds(100)
            } else {
                for peer in peers.values { peer.publishCounters() }
            }
            deadline = min(deadline, statisticsDue)
            let result: PollResult
            do {
                result = try poller.poll(timeout: max(.zero, deadline - .now))
            } catch {
                core.logger.critical("the I/O thread's poll failed; stopping", metadata: ["error": "\(error)"])
                break
            }
            if result.timedOut { continue }
            if let zap, result.isReadable(zap.socket) { zap.answerPending() }
            if let inbound, result.isReadable(inbound.router) {
                drain(inbound.router, readingUserID: core.keys != nil, into: inbound.receive)
            }
            for peer in peers.values {
                // Connection events first: a frame from a new connection must meet the stream
                // already knowing the connection is new (SenderStream ignores ACKs until the
                // connection's WELCOME).
                if result.isReadable(peer.monitor.socket) {
                    while let event = try? peer.monitor.tryReceive() { peer.handle(event) }
                }
                if result.isReadable(peer.dealer) { drain(peer.dealer, into: peer.receive) }
            }
        }
    }

    /// Receives what is waiting, up to a bound so one busy socket cannot starve the rest.
    private func drain(_ socket: Socket, readingUserID: Bool = false, into handler: (Message) -> Void) {
        for _ in 0..<4096 {
            let message: Message?
            do { message = try socket.tryReceive(readingUserID: readingUserID) } catch {
                core.logger.warning("receive failed", metadata: ["error": "\(error)"])
                return
            }
            guard let message else { return }
            handler(message)
        }
    }

    private func handle(_ command: Command) {
        switch command {
        case .durable(let peer, let range, let fresh):
            peers[peer]?.durable(range, fresh: fresh)
        case .deadLettersStored(let peer, let sequences, let unrecorded):
            peers[peer]?.deadLettersStored(sequences, unrecorded: unrecorded)
        case .settled(let sender, let stream, let sequences):
            inbound?.marked(sender: sender, stream: stream, sequences: sequences)
        case .reserved(let sender, let stream, let upTo):
            inbound?.reserved(sender: sender, stream: stream, upTo: upTo)
        case .reservationLowered(let sender, let stream):
            inbound?.reservationLowered(sender: sender, stream: stream)
        case .streamReady(let sender, let stream):
            inbound?.streamReady(sender: sender, stream: stream)
        case .storageFailed(let error):
            core.logger.error("a deduplication record could not be stored", metadata: ["error": "\(error)"])
        case .addPeer(let configuration, let log, let done):
            do { try add(configuration, log: log); done(nil) } catch { done(error) }
        case .removePeer(let id, let done):
            if let peer = peers[id] { remove(peer) }
            done()
        case .stop(let deadline):
            stopDeadline = deadline
            inbound?.beginStopping(taken: core.tracker.taken)
            inbound?.acknowledgeEverythingNow()
        }
    }

    func close() {
        for peer in peers.values { remove(peer) }
        // Acknowledgements just queued must still reach their senders.
        inbound?.router.close(linger: .upTo(.seconds(1)))
        zap?.socket.close()
        core.ioThreadStopped()
    }
}
