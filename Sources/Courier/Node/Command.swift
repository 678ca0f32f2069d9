import CourierSpool
import Synchronization
import ZeroMQ

/// Work posted to the I/O thread by other threads: the application, the spool's threads.
enum Command: Sendable {
    /// Records up to `upTo` are durable in `peer`'s spool and may go on the wire.
    case durable(peer: String, upTo: UInt64)
    /// The application acknowledged (rejection nil) or rejected a delivered message.
    case settle(sender: String, stream: UInt64, sequence: UInt64, rejection: String?)
    /// The inbound store made processed marks durable: acknowledge them.
    case settled(sender: String, stream: UInt64, sequences: [UInt64])
    /// The inbound store made a reservation durable: hand messages out up to it.
    case reserved(sender: String, stream: UInt64, upTo: UInt64)
    /// The inbound store lowered a stream's reservation at shutdown.
    case reservationLowered(sender: String, stream: UInt64)
    /// The inbound store recorded a stream's start durably: answer its hello.
    case streamReady(sender: String, stream: UInt64)
    /// A durable-state write failed.
    case storageFailed(SpoolError)
    /// Start sending to a peer (or update its endpoints).
    case addPeer(PeerConfiguration, OutboundLog, done: @Sendable (CourierError?) -> Void)
    /// Stop sending to a peer.
    case removePeer(String, done: @Sendable () -> Void)
    /// Finish recording and acknowledging what the application settled (until the
    /// deadline at most), then close everything and end the thread.
    case stop(deadline: ContinuousClock.Instant)
}

/// The I/O thread's inbox: a lock-protected queue plus the poller's waker.
final class Mailbox: Sendable {
    private let queue = Mutex<[Command]>([])
    private let waker: Mutex<Waker?> = Mutex(nil)

    func attach(_ waker: Waker) {
        self.waker.withLock { $0 = waker }
    }

    /// Queues `command` and wakes the I/O thread. Only the first command into an empty
    /// queue wakes it: the thread takes the whole queue each turn, so later ones ride along.
    func post(_ command: Command) {
        let wasEmpty = queue.withLock { queue in
            defer { queue.append(command) }
            return queue.isEmpty
        }
        if wasEmpty { waker.withLock { $0 }?.wake() }
    }

    /// Everything queued so far, oldest first.
    func drain() -> [Command] {
        queue.withLock { queue in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
    }
}
