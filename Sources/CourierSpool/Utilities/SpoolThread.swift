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

    /// Starts `body` on a new thread; `name` says what it is for (kept for debugging).
    init(name: String, body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box({
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

