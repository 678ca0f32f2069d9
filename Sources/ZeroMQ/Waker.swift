import CZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// Wakes a thread blocked in ``Poller/poll(timeout:)`` from any other thread.
///
/// `Sendable` and cheap to call: it writes to an `eventfd` that the poller watches beside
/// its sockets, so no ZeroMQ socket is shared between threads. Wake-ups coalesce: several
/// calls before the poller runs make it return once.
public final class Waker: Sendable {
    let fileDescriptor: Int32

    init() throws(ZeroMQError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw .fromErrno(errno, "eventfd") }
        fileDescriptor = fd
    }

    deinit { close(fileDescriptor) }

    /// Makes the poller's current or next ``Poller/poll(timeout:)`` return with
    /// ``PollResult/woken`` set.
    public func wake() {
        var one: UInt64 = 1
        // EAGAIN means the counter is saturated: a wake-up is already pending.
        _ = write(fileDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    /// Consumes pending wake-ups; returns whether there were any.
    func drain() -> Bool {
        var count: UInt64 = 0
        return read(fileDescriptor, &count, MemoryLayout<UInt64>.size) == MemoryLayout<UInt64>.size
    }
}
