import Synchronization

/// The maximum message sizes peers announced (protocol version 2) below this node's own, the
/// only ones that change what `send` accepts. Read by every send from any task, so it keeps
/// off the outcome book's lock, which the I/O thread holds to settle outcomes: with no peer
/// announcing less (the usual case) a send reads one atomic flag.
final class AnnouncedLimits: Sendable {
    private let smaller = Mutex<[String: Int]>([:])
    private let anySmaller = Atomic<Bool>(false)

    /// `peer` announced `maxMessageSize`; this node's own is `own`.
    func record(peer: String, maxMessageSize: Int, own: Int) {
        smaller.withLock { smaller in
            smaller[peer] = maxMessageSize < own ? maxMessageSize : nil
            anySmaller.store(!smaller.isEmpty, ordering: .releasing)
        }
    }

    /// `peer` was removed.
    func forget(peer: String) {
        smaller.withLock { smaller in
            smaller[peer] = nil
            anySmaller.store(!smaller.isEmpty, ordering: .releasing)
        }
    }

    /// The maximum `peer` announced, when it is below this node's own.
    func maxMessageSize(for peer: String) -> Int? {
        guard anySmaller.load(ordering: .acquiring) else { return nil }
        return smaller.withLock { $0[peer] }
    }
}
