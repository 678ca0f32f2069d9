import CCourierSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An operating-system thread of the package's own: blocking work (ZeroMQ calls, file I/O,
/// `fdatasync`) runs on one so that Swift's cooperative thread pool never blocks.
///
/// The only thread type in the package: ZeroMQ's public `DedicatedThread` and the spool's
/// writer, releaser and open threads all start theirs here. A thread that cannot start is a
/// thrown ``OSThread/StartError`` (never a crash); each caller turns it into its own error.
package final class OSThread: Sendable {
    /// `pthread_create` failed (`EAGAIN`: the process or the system is out of threads or
    /// memory for a stack).
    package struct StartError: Error, Sendable, CustomStringConvertible {
        /// The thread's name.
        package var name: String
        /// The error number `pthread_create` returned.
        package var errno: Int32

        package var description: String {
            "cannot start the thread \(name): pthread_create failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }

    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    private let thread: pthread_t

    private init(_ thread: pthread_t) { self.thread = thread }

    /// Starts `body` on a new thread named `name` (the first 15 bytes show in `top -H`,
    /// `gdb` and `perf`). Call ``join()`` or ``detach()`` on the result exactly once.
    package static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(StartError) -> OSThread {
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            courier_name_thread(box.name)
            box.body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw StartError(name: name, errno: result)
        }
        return OSThread(thread)
    }

    /// Starts a thread that nobody joins: its resources are freed when `body` returns.
    package static func detached(name: String, _ body: @escaping @Sendable () -> Void) throws(StartError) {
        try start(name: name, body).detach()
    }

    /// Waits for the thread to finish. Call once, and not after ``detach()``.
    package func join() {
        _ = pthread_join(thread, nil)
    }

    /// Lets the thread finish on its own. Call once, and not after ``join()``.
    package func detach() {
        _ = pthread_detach(thread)
    }
}
