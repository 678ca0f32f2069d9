import CZeroMQ

#if canImport(Glibc)
import Glibc
#endif

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
        final class Box {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            courier_name_thread(box.name)
            box.body()
            return nil
        }, box)
        if result != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw .fromErrno(result, "pthread_create", subject: name)
        }
        pthread_detach(thread)
    }
}
