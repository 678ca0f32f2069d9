#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// A dedicated OS thread that the spool owns, so that blocking file I/O and `fdatasync`
/// never run on the Swift cooperative thread pool.
final class SpoolThread: Sendable {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    #if canImport(Darwin)
    private let thread: pthread_t
    #else
    private let thread: pthread_t
    #endif

    /// Starts `body` on a new thread named `name` (on Linux the first 15 bytes show in
    /// `top -H`, `gdb` and `perf`).
    init(name: String, body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box({
            Self.nameCurrentThread(name)
            body()
        }))
        #if canImport(Darwin)
        var handle: pthread_t?
        #else
        var handle = pthread_t()
        #endif
        let result = pthread_create(&handle, nil, { raw in
            #if canImport(Darwin)
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            #else
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            #endif
            box.body()
            return nil
        }, box.toOpaque())
        precondition(result == 0, "pthread_create failed with \(result): cannot start a spool thread")
        #if canImport(Darwin)
        thread = handle!
        #else
        thread = handle
        #endif
    }

    /// Names the calling thread by writing its `comm` file (the same as `prctl(PR_SET_NAME)`,
    /// which Swift cannot call: it is variadic). Best effort: a failure changes nothing else.
    private static func nameCurrentThread(_ name: String) {
        #if os(Linux)
        let path = "/proc/thread-self/comm"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #endif
    }

    /// Waits for the thread to finish. Call once, and not after ``detach()``.
    func join() {
        _ = pthread_join(thread, nil)
    }

    /// Lets the thread finish on its own (its resources are freed when it ends). Call once,
    /// and not after ``join()``.
    func detach() {
        _ = pthread_detach(thread)
    }
}

/// Wakes a sleeping worker thread. Each `signal` lets one `wait` return; a signal sent while
/// the worker is awake is kept, so a wake-up is never lost (at worst one is spurious).
struct WakeSignal: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    func signal() { semaphore.signal() }

    /// Waits for a signal, or until `timeout` (nanoseconds) passes if given.
    func wait(timeoutNanoseconds: Int64?) {
        if let timeoutNanoseconds {
            _ = semaphore.wait(timeout: .now() + .nanoseconds(Int(clamping: max(0, timeoutNanoseconds))))
        } else {
            semaphore.wait()
        }
    }
}

