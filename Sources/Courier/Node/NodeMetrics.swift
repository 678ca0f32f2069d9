import CourierSpool
import Metrics

/// Counters and gauges for one peer this node sends to (swift-metrics), labelled `peer`.
/// The spool's gauges of what is pending (`courier_spool_pending_*`) come from the spool
/// itself (SpoolMetrics), which keeps them current; they are not written here a second time.
/// docs/METRICS.md (and the DocC article "Running in production") says what each counts.
struct PeerMetrics {
    let sent: Counter
    let retransmitted: Counter
    let processed: Counter
    let rejected: Counter
    let expired: Counter
    let deadLettered: Counter
    /// One sample per round trip measured (Karn's rule: first transmissions only).
    let roundTrip: Timer
    /// The smoothed round trip the retransmission timer is based on, in seconds.
    let roundTripSmoothed: Gauge

    init(peer: String) {
        let dimensions = [("peer", peer)]
        sent = Counter(label: "courier_messages_sent_total", dimensions: dimensions)
        retransmitted = Counter(label: "courier_messages_retransmitted_total", dimensions: dimensions)
        processed = Counter(label: "courier_messages_processed_total", dimensions: dimensions)
        rejected = Counter(label: "courier_messages_rejected_total", dimensions: dimensions)
        expired = Counter(label: "courier_messages_expired_total", dimensions: dimensions)
        deadLettered = Counter(label: "courier_messages_dead_lettered_total", dimensions: dimensions)
        roundTrip = Timer(label: CourierMetrics.roundTripLabel, dimensions: dimensions)
        roundTripSmoothed = Gauge(label: "courier_round_trip_smoothed_seconds", dimensions: dimensions)
    }
}

/// Counters for one node this node receives from, labelled `sender`.
struct SenderMetrics {
    let delivered: Counter
    let acknowledged: Counter
    let rejected: Counter

    init(sender: String) {
        let dimensions = [("sender", sender)]
        delivered = Counter(label: "courier_inbound_delivered_total", dimensions: dimensions)
        acknowledged = Counter(label: "courier_inbound_acknowledged_total", dimensions: dimensions)
        rejected = Counter(label: "courier_inbound_rejected_total", dimensions: dimensions)
    }
}

/// Node-wide counters.
struct NodeMetrics {
    let delivered = Counter(label: "courier_messages_delivered_total")
    let duplicates = Counter(label: "courier_duplicates_dropped_total")
    let beyondWindow = Counter(label: "courier_messages_beyond_window_total")
    let streamsRetired = Counter(label: "courier_inbound_streams_retired_total")

    func refused(_ label: String) {
        Counter(label: "courier_frames_refused_total", dimensions: [("reason", label)]).increment()
    }
}

extension OutboundPeer {
    /// `first` messages went out for the first time and `again` were retransmissions.
    func metricsSent(first: Int, again: Int) {
        if first > 0 { metrics.sent.increment(by: first) }
        if again > 0 { metrics.retransmitted.increment(by: again) }
    }
    func metricsRoundTrip(_ sample: Duration) { metrics.roundTrip.record(duration: sample) }
    func metricsGauges(_ status: OutboundLogStatus) {
        if let smoothed = machine.rtt.smoothed {
            let (seconds, attoseconds) = smoothed.components
            metrics.roundTripSmoothed.record(Double(seconds) + Double(attoseconds) / 1e18)
        }
    }
}
