import CCourierSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Wakes a thread that sleeps waiting for work, from any other thread: the package's one
/// wake-up mechanism.
///
/// An `eventfd`: ``wake()`` adds to its counter, a wait returns once the counter is not zero
/// and resets it. So wake-ups coalesce (several before the sleeper runs make one wait
/// return), and one sent while the sleeper is awake is kept for its next wait: a wake-up is
/// never lost, at worst one is spurious, and the sleeper re-reads its state after every
/// wait. The same descriptor serves a thread that sleeps in ``wait(timeoutNanoseconds:)``
/// (the spool's writer, releaser and blocking calls) and one that polls it beside other
/// descriptors (``fileDescriptor``; ZeroMQ's `Poller` watches it beside its sockets, then
/// calls ``drain()``).
package final class WakeEvent: Sendable {
    /// Why no wake event could be made (`eventfd` failed: `EMFILE`, `ENFILE`, `ENOMEM`).
    package struct CreateError: Error, Sendable, CustomStringConvertible {
        /// The error number `eventfd` set.
        package var errno: Int32

        package var description: String {
            "eventfd failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }

    /// Readable while a wake-up is pending. Owned by this object: never close it.
    package let fileDescriptor: Int32

    package init() throws(CreateError) {
        let fd = courier_eventfd()
        guard fd >= 0 else { throw CreateError(errno: errno) }
        fileDescriptor = fd
    }

    deinit { close(fileDescriptor) }

    /// Makes the current or next wait return.
    package func wake() {
        var one: UInt64 = 1
        // EAGAIN means the counter is saturated: a wake-up is already pending.
        _ = write(fileDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    /// Consumes pending wake-ups without waiting; returns whether there were any.
    @discardableResult
    package func drain() -> Bool {
        var count: UInt64 = 0
        return read(fileDescriptor, &count, MemoryLayout<UInt64>.size) == MemoryLayout<UInt64>.size
    }

    /// Sleeps until woken, or until `timeoutNanoseconds` pass if given, and consumes the
    /// wake-up. Returns whether it was woken (rather than timed out). Never call it from a
    /// Swift task: it blocks the thread.
    @discardableResult
    package func wait(timeoutNanoseconds: Int64?) -> Bool {
        let limit = timeoutNanoseconds.map { max(0, $0) } ?? -1
        let deadline = limit >= 0 ? monotonicNow() &+ limit : 0
        var remaining = limit
        while true {
            let ready = courier_wait_readable(fileDescriptor, remaining)
            if ready > 0 {
                if drain() { return true }
                // Another waiter took it (a single sleeper is the rule; harmless otherwise).
            } else if ready == 0 {
                return false
            }
            // EINTR, or a stolen wake-up: wait again for what is left of the time.
            if limit >= 0 {
                remaining = deadline - monotonicNow()
                if remaining <= 0 { return drain() }
            }
        }
    }

    private func monotonicNow() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
