import CourierSystem
import Synchronization
import Testing

@Suite("OSThread and WakeEvent")
struct ThreadAndWakeTests {
    @Test("a started thread runs its body and can be joined")
    func threadRunsAndJoins() throws {
        final class Flag: Sendable { let ran = Atomic<Bool>(false) }
        let flag = Flag()
        let thread = try OSThread.start(name: "test-thread") { flag.ran.store(true, ordering: .sequentiallyConsistent) }
        thread.join()
        let ran = flag.ran.load(ordering: .sequentiallyConsistent)
        #expect(ran)
    }

    @Test("a wake-up sent before the wait is kept; several coalesce into one")
    func wakeBeforeWaitIsKept() throws {
        let event = try WakeEvent()
        event.wake()
        event.wake()
        #expect(event.wait(timeoutNanoseconds: 1_000_000_000))
        #expect(!event.wait(timeoutNanoseconds: 1_000_000))
    }

    @Test("a wait times out without a wake-up, and returns when another thread wakes it")
    func waitTimesOutOrWakes() throws {
        let event = try WakeEvent()
        #expect(!event.wait(timeoutNanoseconds: 2_000_000))
        #expect(!event.drain())
        let thread = try OSThread.start(name: "test-waker") { event.wake() }
        #expect(event.wait(timeoutNanoseconds: nil))
        thread.join()
    }
}
