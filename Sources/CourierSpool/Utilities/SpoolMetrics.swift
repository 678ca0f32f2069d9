import Metrics

/// The swift-metrics instruments of one outbound log, labelled `courier_spool_*` with a
/// `peer` dimension.
struct SpoolMetrics: Sendable {
    let appends: Counter
    let appendedBytes: Counter
    let appendErrors: Counter
    let syncs: Counter
    let recordsPerSync: Recorder
    let corruptions: Counter
    let pendingMessages: Gauge
    let pendingBytes: Gauge

    init(peer: String) {
        let dimensions = [("peer", peer)]
        appends = Counter(label: "courier_spool_appends_total", dimensions: dimensions)
        appendedBytes = Counter(label: "courier_spool_appended_bytes_total", dimensions: dimensions)
        appendErrors = Counter(label: "courier_spool_append_errors_total", dimensions: dimensions)
        syncs = Counter(label: "courier_spool_syncs_total", dimensions: dimensions)
        recordsPerSync = Recorder(label: "courier_spool_records_per_sync", dimensions: dimensions, aggregate: true)
        corruptions = Counter(label: "courier_spool_corruptions_total", dimensions: dimensions)
        pendingMessages = Gauge(label: "courier_spool_pending_messages", dimensions: dimensions)
        pendingBytes = Gauge(label: "courier_spool_pending_bytes", dimensions: dimensions)
    }
}
