import CourierSystem

/// Wakes a thread blocked in ``Poller/poll(timeout:)`` from any other thread.
///
/// `Sendable` and cheap to call: it signals an event descriptor that the poller watches
/// beside its sockets, so no ZeroMQ socket is shared between threads. Wake-ups coalesce:
/// several calls before the poller runs make it return once.
public final class Waker: Sendable {
    let event: WakeEvent

    init() throws(ZeroMQError) {
        do { event = try WakeEvent() } catch { throw .fromErrno(error.errno, "eventfd") }
    }

    var fileDescriptor: Int32 { event.fileDescriptor }

    /// Makes the poller's current or next ``Poller/poll(timeout:)`` return with
    /// ``PollResult/woken`` set.
    public func wake() { event.wake() }

    /// Consumes pending wake-ups; returns whether there were any.
    func drain() -> Bool { event.drain() }
}
