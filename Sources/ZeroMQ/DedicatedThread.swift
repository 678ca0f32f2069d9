import CourierSystem

/// Runs blocking work (ZeroMQ calls, `fsync`) on an operating-system thread of its own,
/// so that Swift's cooperative thread pool never blocks.
public enum DedicatedThread {
    /// Starts a new thread named `name` (the first 15 bytes show in `top` and `gdb`) running
    /// `body`, and returns its result to the awaiting task when it finishes.
    ///
    /// Sockets created inside `body` belong to that thread.
    public static func run<T: Sendable>(
        name: String, _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            do {
                try start(name: name) { continuation.resume(with: Result { try body() }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Starts a detached thread named `name` running `body`.
    /// - Throws: the `pthread_create` failure (errno in the error) when no thread can start.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(ZeroMQError) {
        do {
            try OSThread.detached(name: name, body)
        } catch {
            throw .fromErrno(error.errno, "pthread_create", subject: name)
        }
    }
}
