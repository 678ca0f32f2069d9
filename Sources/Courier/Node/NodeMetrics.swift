import CourierSpool
import Metrics

/// Counters and gauges for one peer (swift-metrics), labelled `peer`.
struct PeerMetrics {
    let sent: Counter
    let retransmitted: Counter
    let processed: Counter
    let rejected: Counter
    let expired: Counter
    let deadLettered: Counter
    let pending: Gauge
    let pendingBytes: Gauge
    let roundTrip: Timer

    init(peer: String) {
        let dimensions = [("peer", peer)]
        sent = Counter(label: "courier_messages_sent_total", dimensions: dimensions)
        retransmitted = Counter(label: "courier_messages_retransmitted_total", dimensions: dimensions)
        processed = Counter(label: "courier_messages_processed_total", dimensions: dimensions)
        rejected = Counter(label: "courier_messages_rejected_total", dimensions: dimensions)
        expired = Counter(label: "courier_messages_expired_total", dimensions: dimensions)
        deadLettered = Counter(label: "courier_messages_dead_lettered_total", dimensions: dimensions)
        pending = Gauge(label: "courier_spool_pending_messages", dimensions: dimensions)
        pendingBytes = Gauge(label: "courier_spool_pending_bytes", dimensions: dimensions)
        roundTrip = Timer(label: "courier_round_trip_seconds", dimensions: dimensions)
    }
}

/// Node-wide counters.
struct NodeMetrics {
    let delivered = Counter(label: "courier_messages_delivered_total")
    let duplicates = Counter(label: "courier_duplicates_dropped_total")
    let beyondWindow = Counter(label: "courier_messages_beyond_window_total")

    func refused(_ label: String) {
        Counter(label: "courier_frames_refused_total", dimensions: [("reason", label)]).increment()
    }
}

extension OutboundPeer {
    func metricsSent(_ count: Int) { metrics.sent.increment(by: count) }
    func metricsRetransmitted() { metrics.retransmitted.increment() }
    func metricsGauges(_ status: OutboundLogStatus) {
        metrics.pending.record(status.pendingCount)
        metrics.pendingBytes.record(status.pendingBytes)
        if let smoothed = rtt.smoothed { metrics.roundTrip.record(duration: smoothed) }
    }
}
