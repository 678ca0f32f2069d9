import CoreMetrics
import Synchronization

/// Counts one spool sync counter through swift-metrics, the only public window on them from
/// outside the node: the outbound spool's `fdatasync` calls (`courier_spool_syncs_total`,
/// summed over peers) or the inbound journal's (`courier_spool_inbound_syncs_total`). Every
/// other metric goes to a no-op handler.
final class SyncCounter: Sendable {
    private let count = Atomic<Int64>(0)

    var value: Int { Int(count.load(ordering: .relaxed)) }

    static let outbound = "courier_spool_syncs_total"
    static let inbound = "courier_spool_inbound_syncs_total"

    /// Bootstraps the process's metrics system with a counter of the metric `label` (once
    /// per process).
    static func install(_ label: String) -> SyncCounter {
        let counter = SyncCounter()
        MetricsSystem.bootstrap(Factory(counter: counter, label: label))
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
        let label: String

        func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
            label == self.label ? Handler(counter) : NOOPMetricsHandler.instance
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
