/// What Courier reports through swift-metrics, for configuring a metrics backend.
///
/// Courier records to whatever `MetricsSystem` the process bootstrapped; it never bootstraps
/// one itself. The article <doc:RunningInProduction> lists every metric and what it counts.
public enum CourierMetrics {
    /// The label of the round-trip timer (one sample per measured round trip, per peer).
    public static let roundTripLabel = "courier_round_trip_seconds"

    /// Histogram buckets that resolve round trips from a loopback's tens of microseconds to
    /// a wide-area link's seconds: 50 µs, 100 µs, 250 µs, 500 µs, 1 ms, 2.5 ms, 5 ms, 10 ms,
    /// 25 ms, 50 ms, 100 ms, 250 ms, 500 ms, 1 s, 2.5 s, 5 s.
    ///
    /// Common backends' default timer buckets start at 5 ms or more, which puts every
    /// round trip on a local network into the lowest bucket. With swift-prometheus:
    ///
    /// ```swift
    /// var factory = PrometheusMetricsFactory()
    /// factory.durationHistogramBuckets[CourierMetrics.roundTripLabel] = CourierMetrics.roundTripBuckets
    /// MetricsSystem.bootstrap(factory)
    /// ```
    public static let roundTripBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
    ]
}
