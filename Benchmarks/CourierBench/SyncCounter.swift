import CoreMetrics
import Synchronization

/// Counts the outbound spool's `fdatasync` calls (`courier_spool_syncs_total`, summed over
/// peers) through swift-metrics, the only public window on them from outside the node.
/// Every other metric goes to a no-op handler.
final class SyncCounter: Sendable {
    private let count = Atomic<Int64>(0)

    var value: Int { Int(count.load(ordering: .relaxed)) }

    /// Bootstraps the process's metrics system with a counter of spool syncs (once per process).
    static func install() -> SyncCounter {
        let counter = SyncCounter()
        MetricsSystem.bootstrap(Factory(counter: counter))
        return counter
    }

    private final class Handler: CounterHandler, Sendable {
        let counter: SyncCounter
        init(_ counter: SyncCounter) { self.counter = counter }
        func increment(by amount: Int64) { counter.count.add(amount, ordering: .relaxed) }
        func reset() {}
    }

    private struct Factory: MetricsFactory {
        let counter: SyncCounter

        func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
            label == "courier_spool_syncs_total" ? Handler(counter) : NOOPMetricsHandler.instance
        }
        func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
            NOOPMetricsHandler.instance
        }
        func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
            NOOPMetricsHandler.instance
        }
        func destroyCounter(_ handler: any CounterHandler) {}
        func destroyRecorder(_ handler: any RecorderHandler) {}
        func destroyTimer(_ handler: any TimerHandler) {}
    }
}
