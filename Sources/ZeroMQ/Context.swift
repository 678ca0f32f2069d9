import CZeroMQ

/// A libzmq context: the owner of ZeroMQ's background I/O threads and the factory of sockets.
///
/// A context is thread-safe and `Sendable`: share one per process and create each socket on
/// the thread that will own it. Every ``Socket`` keeps its context alive, so the context is
/// terminated (`zmq_ctx_term`) only after its last socket has been closed; with sockets
/// created at the default linger (``Linger/discard``), termination never hangs on unsent
/// messages.
///
/// To stop threads blocked in `receive()` or ``Poller/poll(timeout:)`` on this context, call
/// ``shutdown()``: their calls fail with ``ZeroMQError/Code/terminated`` and they should
/// close their sockets.
public final class Context: @unchecked Sendable {
    // @unchecked: the handle is a libzmq context, which libzmq documents as thread-safe;
    // it is immutable after init and released exactly once, in deinit.
    let handle: UnsafeMutableRawPointer

    /// Creates a context.
    /// - Parameter ioThreads: libzmq's background I/O threads. Default: 1, enough for
    ///   about a gigabyte per second of traffic.
    public init(ioThreads: Int32 = 1) throws(ZeroMQError) {
        guard let handle = zmq_ctx_new() else { throw .last("zmq_ctx_new") }
        if ioThreads != 1, zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) != 0 {
            let error = ZeroMQError.last("zmq_ctx_set", subject: "ZMQ_IO_THREADS")
            zmq_ctx_term(handle)
            throw error
        }
        self.handle = handle
    }

    /// Makes every blocking call on this context's sockets return ``ZeroMQError/Code/terminated``.
    ///
    /// Safe to call from any thread and more than once. Sockets still have to be closed by
    /// their owning threads; the context itself terminates once the last one is gone.
    public func shutdown() {
        _ = zmq_ctx_shutdown(handle)
    }

    deinit {
        // All sockets hold a strong reference to this context, so none is open here.
        while zmq_ctx_term(handle) != 0, zmq_errno() == EINTR {}
    }
}
