import CZeroMQ

/// A ZeroMQ socket. **Not thread-safe: a socket belongs to exactly one thread.**
///
/// libzmq sockets must not be used from two threads, so `Socket` is deliberately not
/// `Sendable`: Swift's strict concurrency checking refuses to share one between tasks or
/// threads. Create a socket on the thread that owns it (for example inside
/// ``DedicatedThread/run(name:_:)`` or the body of your own I/O thread), or hand a freshly
/// created one over with `sending`, and use it only there. Blocking calls (`receive`,
/// ``Poller/poll(timeout:)``) belong on such a thread, never on Swift's cooperative pool.
///
/// A socket is closed by ``close(linger:)`` or, failing that, when it is released.
/// Sockets start with linger ``Linger/discard``: closing drops messages still queued, so
/// neither closing nor terminating the ``Context`` can hang. Courier never relies on
/// ZeroMQ's queues for reliability, so it loses nothing by this.
public final class Socket {
    /// The socket's pattern.
    public let type: SocketType
    /// The context that created the socket; kept alive until the socket is closed.
    public let context: Context
    private(set) var handle: UnsafeMutableRawPointer?

    /// Creates a socket of `type` in `context`, with linger ``Linger/discard``.
    public init(_ type: SocketType, context: Context) throws(ZeroMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw .last("zmq_socket", subject: type.description)
        }
        var zero: Int32 = 0
        zmq_setsockopt(handle, ZMQ_LINGER, &zero, MemoryLayout<Int32>.size)
        self.type = type
        self.context = context
        self.handle = handle
    }

    deinit {
        if let handle { zmq_close(handle) }
    }

    /// Whether ``close(linger:)`` has been called.
    public var isClosed: Bool { handle == nil }

    /// Closes the socket. Further calls on it throw ``ZeroMQError/Code/socketClosed``.
    ///
    /// - Parameter linger: how long libzmq may keep trying to deliver messages still queued
    ///   for sending; `nil` keeps the socket's current ``SocketOption/linger`` setting.
    public func close(linger: Linger? = nil) {
        guard let handle else { return }
        if let linger {
            var value = linger.milliseconds
            zmq_setsockopt(handle, ZMQ_LINGER, &value, MemoryLayout<Int32>.size)
        }
        zmq_close(handle)
        self.handle = nil
    }

    /// Runs `body` with the live handle, or throws ``ZeroMQError/Code/socketClosed``.
    @inline(__always)
    func withHandle<T>(
        _ operation: String, _ body: (UnsafeMutableRawPointer) throws(ZeroMQError) -> T
    ) throws(ZeroMQError) -> T {
        guard let handle else {
            throw .usage(.socketClosed, "the socket is closed", operation)
        }
        return try body(handle)
    }

    // MARK: Endpoints

    /// Listens on `endpoint` (`tcp://HOST:PORT`, `tcp://HOST:*` for any free port,
    /// `ipc:///path`, `inproc://name`). Read the chosen address with ``lastEndpoint()``.
    public func bind(_ endpoint: String) throws(ZeroMQError) {
        try endpointCall("zmq_bind", endpoint, zmq_bind)
    }

    /// Connects to `endpoint`. The connection is made in the background and re-made after
    /// failures; the call fails only when the endpoint itself is unusable.
    public func connect(_ endpoint: String) throws(ZeroMQError) {
        try endpointCall("zmq_connect", endpoint, zmq_connect)
    }

    /// Stops listening on an endpoint previously bound (use the address ``lastEndpoint()``
    /// returned when the port was `*`).
    public func unbind(_ endpoint: String) throws(ZeroMQError) {
        try endpointCall("zmq_unbind", endpoint, zmq_unbind)
    }

    /// Drops the connection to an endpoint previously connected.
    public func disconnect(_ endpoint: String) throws(ZeroMQError) {
        try endpointCall("zmq_disconnect", endpoint, zmq_disconnect)
    }

    /// The endpoint most recently bound or connected, with a wildcard port resolved
    /// (`ZMQ_LAST_ENDPOINT`), or `nil` when there is none.
    public func lastEndpoint() throws(ZeroMQError) -> String? {
        let value = try get(.lastEndpoint)
        return value.isEmpty ? nil : value
    }

    private func endpointCall(
        _ name: String, _ endpoint: String,
        _ call: (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32
    ) throws(ZeroMQError) {
        try withHandle(name) { handle throws(ZeroMQError) in
            if endpoint.utf8.contains(0) {
                throw .usage(.invalidEndpoint, "the endpoint contains a NUL byte", name, subject: endpoint)
            }
            if call(handle, endpoint) != 0 { throw .last(name, subject: endpoint) }
        }
    }
}

@available(*, unavailable, message: "a ZeroMQ socket belongs to one thread; create it where it is used")
extension Socket: Sendable {}
