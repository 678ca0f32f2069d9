/// Retransmission timeout from measured round trips (RFC 6298): smoothed RTT plus four
/// times its variance, clamped, doubled on each timeout (back-off) up to the cap, with jitter.
struct RoundTripEstimator {
    private(set) var smoothed: Duration?
    private var variance: Duration = .zero
    private var backoff = 0
    let policy: RetransmissionPolicy

    init(policy: RetransmissionPolicy) { self.policy = policy }

    /// Feeds a round trip measured on a first transmission (Karn's rule) and ends any back-off.
    mutating func sample(_ rtt: Duration) {
        if let smoothed {
            let error = smoothed > rtt ? smoothed - rtt : rtt - smoothed
            variance = variance * 0.75 + error * 0.25
            self.smoothed = smoothed * 0.875 + rtt * 0.125
        } else {
            smoothed = rtt
            variance = rtt / 2
        }
        backoff = 0
    }

    /// Progress without a sample (for example an acknowledgement of retransmitted data).
    mutating func progressed() { backoff = 0 }

    /// A timeout fired: the next timeout doubles, up to the cap.
    mutating func timedOut() { backoff = min(backoff + 1, 16) }

    /// The current timeout, before jitter.
    var timeout: Duration {
        var base = smoothed.map { $0 + variance * 4 } ?? policy.initialTimeout
        base = max(base, policy.minimumTimeout)
        for _ in 0..<backoff where base < policy.maximumTimeout { base = base * 2 }
        return min(base, policy.maximumTimeout)
    }

    /// The current timeout with ±20 % jitter, so that many senders do not retry in step.
    func jitteredTimeout<G: RandomNumberGenerator>(using generator: inout G) -> Duration {
        timeout * Double.random(in: 0.8...1.2, using: &generator)
    }
}
