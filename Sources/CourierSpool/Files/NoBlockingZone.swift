#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Threads on which no disk sync may run: the node's I/O thread, where a sync would stall
/// every peer. Each `fdatasync` and `fsync` of the spool checks it; a debug build (every
/// test run) stops at the offending call, so a change that brings a sync back onto the I/O
/// thread fails the tests that reach it. A release build only counts the call
/// (``violations``), for a test to read.
package enum NoBlockingZone {
    private static let threads = Mutex<Set<UInt>>([])
    private static let violationCount = Atomic<Int>(0)

    /// Marks the calling thread: no sync may run on it until ``leave()``.
    package static func enter() {
        let me = current
        threads.withLock { _ = $0.insert(me) }
    }

    /// Unmarks the calling thread (it is about to end).
    package static func leave() {
        let me = current
        threads.withLock { _ = $0.remove(me) }
    }

    /// Syncs attempted on a marked thread since the process started.
    package static var violations: Int { violationCount.load(ordering: .relaxed) }

    /// Called before each blocking sync: `call` names it.
    static func check(_ call: StaticString) {
        let me = current
        guard threads.withLock({ $0.contains(me) }) else { return }
        violationCount.add(1, ordering: .relaxed)
        assertionFailure("\(call) on a thread that must not block (the node's I/O thread): move it to a storage thread")
    }

    #if canImport(Darwin)
    private static var current: UInt { UInt(bitPattern: pthread_self()) }
    #else
    private static var current: UInt { UInt(pthread_self()) }
    #endif
}
