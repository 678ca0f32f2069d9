import CZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// Readiness conditions to wait for or that were met.
public struct PollEvents: OptionSet, Sendable, Hashable {
    /// libzmq's `ZMQ_POLLIN`/`ZMQ_POLLOUT` bits.
    public let rawValue: Int16
    /// Events from libzmq's bits.
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// A message can be received.
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// A message can be sent without blocking.
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// What one ``Poller/poll(timeout:)`` found.
public struct PollResult: Sendable {
    /// Whether the poller's ``Waker`` was triggered (the wake-up is consumed).
    public var woken: Bool
    fileprivate var ready: [(socket: ObjectIdentifier, events: PollEvents)]

    /// Whether nothing was ready and nobody woke the poller: the timeout passed.
    public var timedOut: Bool { !woken && ready.isEmpty }

    /// The conditions met by `socket` (empty when it was not ready or is not registered).
    public func events(for socket: Socket) -> PollEvents {
        let id = ObjectIdentifier(socket)
        return ready.first { $0.socket == id }?.events ?? []
    }

    /// Whether `socket` has a message to receive.
    public func isReadable(_ socket: Socket) -> Bool { events(for: socket).contains(.readable) }
}

/// Waits on several sockets at once (`zmq_poll`), and on a ``Waker`` other threads can use.
///
/// Like the sockets it holds, a poller belongs to one thread; only its ``waker`` may be
/// handed to others. The poller keeps its sockets alive until they are unregistered.
public final class Poller {
    private var sockets: [Socket] = []
    private var events: [PollEvents] = []
    private var items: [zmq_pollitem_t] = []

    /// Triggers a return from ``poll(timeout:)`` from any thread.
    public let waker: Waker

    /// An empty poller; ``register(_:for:)`` adds sockets.
    public init() throws(ZeroMQError) {
        waker = try Waker()
    }

    /// Watches `socket` for `events`; registering it again replaces its events.
    public func register(_ socket: Socket, for events: PollEvents = .readable) {
        if let index = sockets.firstIndex(where: { $0 === socket }) {
            self.events[index] = events
        } else {
            sockets.append(socket)
            self.events.append(events)
        }
    }

    /// Stops watching `socket`.
    public func unregister(_ socket: Socket) {
        guard let index = sockets.firstIndex(where: { $0 === socket }) else { return }
        sockets.remove(at: index)
        events.remove(at: index)
    }

    /// Waits until a registered socket is ready, the waker is triggered, or `timeout` passes.
    ///
    /// - Parameter timeout: the longest wait; `nil` waits without limit, `.zero` only checks.
    /// - Throws: ``ZeroMQError/Code/socketClosed`` if a registered socket was closed,
    ///   ``ZeroMQError/Code/terminated`` once the context shuts down.
    public func poll(timeout: Duration?) throws(ZeroMQError) -> PollResult {
        items.removeAll(keepingCapacity: true)
        for (socket, wanted) in zip(sockets, events) {
            guard let handle = socket.handle else {
                throw .usage(.socketClosed, "a socket registered with the poller was closed", "zmq_poll")
            }
            items.append(zmq_pollitem_t(socket: handle, fd: 0, events: wanted.rawValue, revents: 0))
        }
        items.append(zmq_pollitem_t(socket: nil, fd: waker.fileDescriptor, events: Int16(ZMQ_POLLIN), revents: 0))
        let milliseconds: Int = timeout.map { Int(clamping: max(0, $0.wholeMilliseconds)) } ?? -1

        while true {
            let count = zmq_poll(&items, Int32(items.count), milliseconds)
            if count >= 0 { break }
            let number = zmq_errno()
            if number == EINTR { continue }
            throw .fromErrno(number, "zmq_poll")
        }
        var result = PollResult(woken: false, ready: [])
        for (index, item) in items.enumerated() where item.revents != 0 {
            if index == sockets.count {
                result.woken = waker.drain()
            } else {
                result.ready.append((ObjectIdentifier(sockets[index]), PollEvents(rawValue: item.revents)))
            }
        }
        return result
    }
}
