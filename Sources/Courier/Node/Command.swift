import CourierSpool
import Synchronization
import ZeroMQ

/// Work posted to the I/O thread by other threads: the application, the spool's threads.
enum Command: Sendable {
    /// Records up to `upTo` are durable in `peer`'s spool and may go on the wire; `fresh`
    /// are the ones just appended (numbered `range`), to send without reading them back.
    case durable(peer: String, range: ClosedRange<UInt64>, fresh: [SpoolEntry])
    /// Decided numbers' dead letters are stored (or failed, logged): the spool may let the
    /// records go. `unrecorded` are those whose letter was not stored (the write failed, or
    /// the log no longer held the record): their outcomes stay in memory.
    case deadLettersStored(peer: String, sequences: [UInt64], unrecorded: [UInt64])
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

/// The application's verdict on one delivered message: acknowledged (rejection nil) or
/// rejected.
struct Settlement: Sendable {
    var sender: String
    var stream: UInt64
    var sequence: UInt64
    var rejection: String?
}

/// The I/O thread's inbox: lock-protected queues plus the poller's waker. Settlements (one
/// per delivered message) have a queue of their own, so that the busiest traffic is plain
/// values the I/O thread takes in one swap.
final class Mailbox: Sendable {
    private struct Queues {
        var commands: [Command] = []
        var settlements: [Settlement] = []
        var isEmpty: Bool { commands.isEmpty && settlements.isEmpty }
    }

    private let queues = Mutex(Queues())
    private let waker: Mutex<Waker?> = Mutex(nil)

    func attach(_ waker: Waker) {
        self.waker.withLock { $0 = waker }
    }

    /// Queues `command` and wakes the I/O thread. Only the first item into empty queues
    /// wakes it: the thread takes everything queued each turn, so later ones ride along.
    func post(_ command: Command) {
        let wasEmpty = queues.withLock { queues in
            defer { queues.commands.append(command) }
            return queues.isEmpty
        }
        if wasEmpty { wake() }
    }

    /// Queues the application's verdict on a message, waking the I/O thread as ``post(_:)``.
    func post(_ settlement: Settlement) {
        let wasEmpty = queues.withLock { queues in
            defer { queues.settlements.append(settlement) }
            return queues.isEmpty
        }
        if wasEmpty { wake() }
    }

    /// Everything queued so far, oldest first; `commands` and `settlements` are replaced
    /// (pass emptied arrays back in to reuse their storage).
    func drain(commands: inout [Command], settlements: inout [Settlement]) {
        commands.removeAll(keepingCapacity: true)
        settlements.removeAll(keepingCapacity: true)
        queues.withLock { queues in
            swap(&queues.commands, &commands)
            swap(&queues.settlements, &settlements)
        }
    }

    private func wake() {
        waker.withLock { $0 }?.wake()
    }
}
