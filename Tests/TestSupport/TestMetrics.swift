import Metrics
public import MetricsTestKit

/// The process-wide test metrics factory. swift-metrics bootstraps once per process, and
/// every test target runs in one process, so every suite that reads metrics uses this one.
/// Metrics made before its first use go to the no-op backend: touch it before starting
/// the nodes or stores whose metrics a test reads.
public let testMetrics: TestMetrics = {
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    return metrics
}()
